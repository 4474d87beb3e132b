"""Import labels: `smartray import-labels FILE --format F --annotator NAME [--image-root DIR]`.

Formats: coco, yolo, labelstudio, cvat, folders. Every object becomes a `label_events`
row (importing a file twice adds nothing); every entry that fails validation a
`quarantine` row with a reason, and the valid rest is imported. Boxes and polygons past
the image edge by at most `--edge-px` (or `--edge-fraction` of the side, the larger) are
clipped to it and counted. Exit 0 with a report
when the file parsed; 2 with nothing written when the file itself is unusable.
"""

from pydantic import Field
from pydantic_settings import CliPositionalArg

from smartray.annotate import EDGE_FRACTION, EDGE_PX
from smartray.jobrun import JobSettings, run_job


class ImportLabelsJob(JobSettings):
    """Validated label import into the ledger."""

    file: CliPositionalArg[str] = Field(description="label file (or folder, for folders/yolo)")
    format: str = Field(description="coco, yolo, labelstudio, cvat or folders")
    annotator: str = Field(description="who made the labels")
    image_root: str | None = Field(None, description="where file names in the file point")
    allow_host: list[str] = Field([], description="hosts whose http(s) image URLs may be read")
    ontology: str | None = Field(None, description="ontology name (default: the only one)")
    ontology_version: int | None = Field(None, description="version (default: latest)")
    source: str = Field("human", description="human or model")
    edge_px: float = Field(
        EDGE_PX, ge=0, description="clip boxes past the image edge by up to this many px"
    )
    edge_fraction: float = Field(
        EDGE_FRACTION, ge=0, le=1, description="... or by up to this fraction of the side"
    )
    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")


def run(cfg: ImportLabelsJob) -> str:
    """Imports and returns the summary line."""
    from smartray.annotate import import_labels

    summary = import_labels(
        cfg.file,
        cfg.format,
        annotator=cfg.annotator,
        lake=cfg.lake,
        ontology=cfg.ontology,
        ontology_version=cfg.ontology_version,
        image_root=cfg.image_root,
        allowed_hosts=tuple(cfg.allow_host),
        source=cfg.source,
        edge_px=cfg.edge_px,
        edge_fraction=cfg.edge_fraction,
    )
    return summary.line()


def main(argv: list[str] | None = None) -> None:
    """`smartray import-labels` and `python -m jobs.import_labels`."""
    run_job(ImportLabelsJob, argv, "smartray import-labels", run)
