"""Lake upkeep: `smartray maintain [--lake URI] [--tables a,b] [--dry-run]`.

Compacts small files, vacuums files no pinned version needs, and checkpoints each table.
"""

import gc

from pydantic import Field

from smartray.jobrun import JobSettings, run_job
from smartray.tables import LakeLocation
from smartray.upkeep import maintain, summary_lines


class MaintainJob(JobSettings):
    """Compact, vacuum and checkpoint the lake's tables."""

    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")
    tables: list[str] | None = Field(
        None, description="tables to maintain (null: all there are), e.g. --tables assets,runs"
    )
    target_size_mb: int = Field(100, ge=1, description="compaction's target file size (MiB)")
    min_retention_hours: int = Field(
        168,
        ge=0,
        description="smallest vacuum retention (Delta's default: 7 days); a table keeps "
        "removed files back to the oldest version a run or snapshot pins",
    )
    dry_run: bool = Field(False, description="list what vacuum would delete; write nothing")


def run(cfg: MaintainJob) -> str:
    """Maintains the lake, prints one line per table and a summary, returns them."""
    location = LakeLocation.from_uri(cfg.lake)
    config = cfg.model_dump(mode="json") | {"lake": location.root}
    result = maintain(
        location,
        tables=cfg.tables,
        target_size_mb=cfg.target_size_mb,
        min_retention_hours=cfg.min_retention_hours,
        dry_run=cfg.dry_run,
        config=config,
    )
    text = "\n".join(summary_lines(result))
    print(text, flush=True)
    return text


def main(argv: list[str] | None = None) -> None:
    """`smartray maintain` and `python -m jobs.maintain`."""
    run_job(MaintainJob, argv, "smartray maintain", run)


if __name__ == "__main__":
    main()
    gc.collect()  # deltalake can abort at exit after reading a table (upstream bug)
