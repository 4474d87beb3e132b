"""Export images and labels: `smartray export --format coco|yolo|labelstudio|cvat --out DIR`.

Choose the assets with `--snapshot NAME`, `--where EXPR`, `--from-label-issues [--top N]
[--issues-run RUN]` (the assets `smartray find-label-issues` suspects, to send for
re-annotation), or `--batch EXPERIMENT:ROUND` (an active-learning round's picks, with the
model's guess of each image's class as a pre-annotation). Images are written as
`images/<asset_id>.<ext>` under `--out` (a folder or `s3://` prefix), with the approved
labels in the format's files; the export streams in chunks of `--chunk` assets. Objects
the format cannot hold are left out, logged and counted in the summary line.
"""

from pydantic import Field

from smartray.annotate import CHUNK
from smartray.errors import ConfigError
from smartray.jobrun import JobSettings, run_job


class ExportJob(JobSettings):
    """Images and labels for an annotation tool."""

    format: str = Field(description="coco, yolo, labelstudio or cvat")
    out: str = Field(description="output folder or s3://bucket/prefix")
    snapshot: str | None = Field(None, description="export this snapshot's assets")
    where: str | None = Field(None, description="or the assets matching this SQL filter")
    from_label_issues: bool = Field(False, description="or the assets with label issues")
    top: int | None = Field(None, ge=1, description="with --from-label-issues: the first N")
    issues_run: str | None = Field(
        None, description="with --from-label-issues: that run's issues (default: latest)"
    )
    batch: str | None = Field(
        None,
        description="or an active-learning batch, EXPERIMENT:ROUND, with the model's class "
        "guesses as pre-annotations (labelstudio, cvat)",
    )
    ontology: str | None = Field(None, description="ontology name (default: the only one)")
    ontology_version: int | None = Field(None, ge=1, description="its version (default: latest)")
    image_url_prefix: str | None = Field(None, description="prefix of image URLs in tasks")
    presign_expiry_s: int | None = Field(
        None, gt=0, description="s3 out: reference images by presigned URLs valid this long"
    )
    chunk: int = Field(CHUNK, ge=1, description="assets held in memory at once")
    rotated: str = Field(
        "refuse",
        description="coco/yolo: rotated boxes are refused, or written as 4-point polygons "
        "(polygon), or yolo: every box as an oriented box (obb)",
    )
    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")


def run(cfg: ExportJob) -> str:
    """Writes the export and returns its summary line."""
    from smartray.annotate import export

    ways = {
        "--snapshot": cfg.snapshot,
        "--where": cfg.where,
        "--from-label-issues": cfg.from_label_issues,
        "--batch": cfg.batch,
    }
    chosen = [flag for flag, value in ways.items() if value]
    if len(chosen) > 1:
        raise ConfigError(
            f"{' and '.join(chosen)}: choose the assets one way: --snapshot, --where, "
            "--from-label-issues or --batch"
        )
    where = cfg.where
    if cfg.from_label_issues:
        from smartray.annotate import issue_queue
        from smartray.tables import Lake

        queue = issue_queue(Lake(cfg.lake), cfg.issues_run, cfg.top)
        quoted = (a.replace("'", "''") for a in queue["asset_id"].to_pylist())
        where = "asset_id IN (" + ", ".join(f"'{a}'" for a in quoted) + ")"
    elif cfg.top is not None or cfg.issues_run is not None:
        raise ConfigError("--top and --issues-run go with --from-label-issues")
    summary = export(
        cfg.format,
        cfg.out,
        lake=cfg.lake,
        snapshot=cfg.snapshot,
        where=where,
        batch=cfg.batch,
        ontology=cfg.ontology,
        ontology_version=cfg.ontology_version,
        image_url_prefix=cfg.image_url_prefix,
        presign_expiry_s=cfg.presign_expiry_s,
        chunk=cfg.chunk,
        rotated=cfg.rotated,
    )
    return summary.line()


def main(argv: list[str] | None = None) -> None:
    """`smartray export` and `python -m jobs.export`."""
    run_job(ExportJob, argv, "smartray export", run)
