"""Augment a snapshot: `smartray augment --snapshot NAME --ops flip,rotate:15 --copies K`.

Ops, chained in order (an optional strength after a colon): flip[:p], rotate[:degrees],
crop[:min side share], jitter[:amount], blur[:sigma], noise[:std], cutout[:side share].
Children are `assets` rows (`media_type = augmented`) with `parent_id`, the op list and
the seed; the same seed gives the same bytes. They join the parent's duplicate group
and split.
"""

from pydantic import Field

from smartray.augment import COPIES, PARENTS_PER_TASK, SEED
from smartray.jobrun import JobSettings, run_job


class AugmentJob(JobSettings):
    """Augmented children of a snapshot's assets."""

    snapshot: str = Field(min_length=1, description="snapshot whose assets are the parents")
    ops: str = Field(description="op[:strength],... e.g. flip,rotate:15,jitter:0.2")
    copies: int = Field(COPIES, ge=1, le=1000, description="children per parent")
    seed: int = Field(SEED, description="fixes every random choice (same seed, same bytes)")
    parents_per_task: int = Field(PARENTS_PER_TASK, ge=1, description="parents per Ray task")
    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")
    ray_address: str | None = Field(None, description="Ray cluster to join (default: local)")


def run(cfg: AugmentJob) -> str:
    """Makes the children and returns the summary line."""
    from smartray.augment import augment_snapshot  # loads Ray: not for `--help`

    summary = augment_snapshot(
        cfg.snapshot,
        cfg.ops,
        copies=cfg.copies,
        seed=cfg.seed,
        lake=cfg.lake,
        parents_per_task=cfg.parents_per_task,
        ray_address=cfg.ray_address,
    )
    return summary.line()


def main(argv: list[str] | None = None) -> None:
    """`smartray augment` and `python -m jobs.augment`."""
    run_job(AugmentJob, argv, "smartray augment", run)
