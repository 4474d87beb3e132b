"""Erase assets for good: `smartray erase ID... [--ids-file PATH] [--lake URI]`.

An ID is an asset id or a video id. Erased with it: a video's frames, every augmented
descendant, and their rows in every table with an `asset_id` or `video_id` column. The
files that held those rows are rewritten and the old ones deleted at once, whatever
runs or snapshots pinned them; those runs and snapshots are marked `broken_by` this run.
The erased ids are taken out of the Delta log too (statistics, commit info, checkpoints).
"""

from pydantic import Field
from pydantic_settings import CliPositionalArg

from smartray.jobrun import JobSettings, run_job
from smartray.upkeep import ORPHAN_GRACE_MINUTES


class EraseJob(JobSettings):
    """Erase assets or videos and everything derived from them."""

    ids: CliPositionalArg[list[str]] = Field([], description="asset or video ids (sha256 hex)")
    ids_file: str | None = Field(
        None, description="also erase the ids in this file (one per line; local or s3://)"
    )
    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")
    orphan_grace_minutes: float = Field(
        ORPHAN_GRACE_MINUTES,
        ge=0,
        description="also delete files no commit ever added that hold an erased id, once "
        "older than this (a younger one may be a running job's part)",
    )


def run(cfg: EraseJob) -> str:
    """Erases and returns what went and what broke."""
    from smartray.upkeep import erase, read_ids_file

    ids = list(cfg.ids) + (read_ids_file(cfg.ids_file) if cfg.ids_file else [])
    result = erase(ids, lake=cfg.lake, orphan_grace_minutes=cfg.orphan_grace_minutes)
    return "\n".join(result.lines())


def main(argv: list[str] | None = None) -> None:
    """`smartray erase` and `python -m jobs.erase`."""
    run_job(EraseJob, argv, "smartray erase", run)
