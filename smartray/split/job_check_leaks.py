"""List groups that straddle splits: `smartray check-leaks --split NAME` (or `--split-file`).

A group is near-duplicates (`dup_groups`), the frames of one video, and optionally the
values of `--group-by COLUMN`. Works on a stored split or on a file from elsewhere (CSV,
Parquet or JSON lines with `split` and `asset_id` or `source_uri`). Writes nothing.
"""

from collections.abc import Iterator

from pydantic import Field

from smartray.jobrun import EXIT_FAILED, JobSettings, run_job


class CheckLeaksJob(JobSettings):
    """Leak check of a split."""

    split: str | None = Field(None, description="a split stored by `smartray split`")
    split_file: str | None = Field(None, description="a split file: split + asset_id/source_uri")
    group_by: str | None = Field(None, description="also treat this column's values as groups")
    limit: int = Field(20, ge=0, description="leaking groups to list")
    fail: bool = Field(False, description="exit 1 when any group leaks")
    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")


def run(cfg: CheckLeaksJob) -> Iterator[str]:
    """Yields the report; with `--fail`, exits 1 after it when any group leaks."""
    from smartray.split import check_leaks

    report = check_leaks(
        lake=cfg.lake, split_name=cfg.split, split_file=cfg.split_file, group_by=cfg.group_by
    )
    yield "\n".join(report.lines(cfg.limit))
    if cfg.fail and report.leaks:
        raise SystemExit(EXIT_FAILED)


def main(argv: list[str] | None = None) -> None:
    """`smartray check-leaks` and `python -m jobs.check_leaks`."""
    run_job(CheckLeaksJob, argv, "smartray check-leaks", run)
