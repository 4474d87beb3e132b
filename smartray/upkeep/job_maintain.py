"""Lake upkeep: `smartray maintain [--lake URI] [--tables a,b] [--dry-run]`.

Compacts small files, vacuums files no pinned version needs, deletes orphan files no
commit ever added (`--orphan-grace-minutes`), and checkpoints each table.
"""

from pydantic import Field

from smartray.jobrun import JobSettings, run_job
from smartray.tables import LakeLocation
from smartray.upkeep import (
    MIN_RETENTION_HOURS,
    ORPHAN_GRACE_MINUTES,
    TARGET_SIZE_MB,
    maintain,
    summary_lines,
)


class MaintainJob(JobSettings):
    """Compact, vacuum and checkpoint the lake's tables."""

    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")
    tables: list[str] | None = Field(
        None, description="tables to maintain (null: all there are), e.g. --tables assets,runs"
    )
    target_size_mb: int = Field(
        TARGET_SIZE_MB, ge=1, description="compaction's target file size (MiB)"
    )
    min_retention_hours: int = Field(
        MIN_RETENTION_HOURS,
        ge=0,
        description="smallest vacuum retention (Delta's default: 7 days); a table keeps "
        "removed files back to the oldest version a run or snapshot pins",
    )
    orphan_grace_minutes: float = Field(
        ORPHAN_GRACE_MINUTES,
        ge=0,
        description="delete files no commit ever added (parts of a killed job) once older "
        "than this; keep it above your longest job's run time (0: no job is running)",
    )
    dry_run: bool = Field(False, description="list what vacuum would delete; write nothing")


def run(cfg: MaintainJob) -> str:
    """Maintains the lake; returns one line per table and a summary."""
    location = LakeLocation.from_uri(cfg.lake)
    config = cfg.model_dump(mode="json") | {"lake": location.root}
    result = maintain(
        location,
        tables=cfg.tables,
        target_size_mb=cfg.target_size_mb,
        min_retention_hours=cfg.min_retention_hours,
        dry_run=cfg.dry_run,
        config=config,
        orphan_grace_minutes=cfg.orphan_grace_minutes,
    )
    return "\n".join(summary_lines(result))


def main(argv: list[str] | None = None) -> None:
    """`smartray maintain` and `python -m jobs.maintain`."""
    run_job(MaintainJob, argv, "smartray maintain", run)
