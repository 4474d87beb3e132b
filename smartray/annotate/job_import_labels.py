"""Import labels: `smartray import-labels FILE --format F --annotator NAME [--image-root DIR]`.

Formats: coco, yolo, labelstudio, cvat, folders. Every object becomes a `label_events`
row (importing a file twice adds nothing); every entry that fails validation a
`quarantine` row with a reason, and the valid rest is imported. Exit 0 with a report
when the file parsed; 2 with nothing written when the file itself is unusable.
"""

from pydantic import Field
from pydantic_settings import CliPositionalArg

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
    )
    return summary.line()


def main(argv: list[str] | None = None) -> None:
    """`smartray import-labels` and `python -m jobs.import_labels`."""
    run_job(ImportLabelsJob, argv, "smartray import-labels", run)
