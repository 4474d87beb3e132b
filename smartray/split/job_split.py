"""Assign train/val/test: `smartray split --split NAME --ratios train=0.8,val=0.1,test=0.1`.

Whole groups go to one split: near-duplicates (`smartray curate` first), the frames of a
video, and optionally the values of `--group-by COLUMN`. A group's split follows a hash
of (seed, group), so assignments stay put as the lake grows; re-running with the same
name assigns only new assets. `--no-groups` makes a plain per-asset split. When a group
is too big for the ratios to hold within `--tolerance`, nothing is written (exit 2) and
the largest groups are named, unless `--allow-skew` is given. `--name` is the old name of
`--split` (the flag `check-leaks` and later jobs take).
"""

from pydantic import AliasChoices, Field

from smartray.jobrun import JobSettings, run_job
from smartray.split import TOLERANCE


class SplitJob(JobSettings):
    """Group-aware, reproducible splits stored in the `splits` table."""

    split: str = Field(
        min_length=1,
        validation_alias=AliasChoices("split", "name"),
        description="split name (its key in the splits table); --name is an alias",
    )
    ratios: str = Field("train=0.8,val=0.1,test=0.1", description="name=share,... summing to 1")
    seed: int = Field(0, description="fixes which groups go where")
    group_by: str | None = Field(None, description="also keep assets sharing this column together")
    stratify_by: str | None = Field(None, description="column to stratify by (default: label)")
    groups: bool = Field(True, description="keep groups whole (--no-groups: per asset)")
    tolerance: float = Field(
        TOLERANCE, ge=0, le=1, description="largest miss of a realized share, else exit 2"
    )
    allow_skew: bool = Field(False, description="write the split even when shares miss")
    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")


def run(cfg: SplitJob) -> str:
    """Assigns the split and returns the realized ratios."""
    from smartray.split import split

    summary = split(
        cfg.split,
        cfg.ratios,
        lake=cfg.lake,
        seed=cfg.seed,
        groups=cfg.groups,
        group_by=cfg.group_by,
        stratify_by=cfg.stratify_by,
        tolerance=cfg.tolerance,
        allow_skew=cfg.allow_skew,
    )
    return "\n".join(summary.lines())


def main(argv: list[str] | None = None) -> None:
    """`smartray split` and `python -m jobs.split`."""
    run_job(SplitJob, argv, "smartray split", run)
