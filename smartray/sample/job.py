"""Draw a named snapshot: `smartray sample --name NAME --strategy S --n N [--where EXPR]`.

Strategies: random; stratified by `--by COLUMN`; balanced over `--by` (class-balanced);
diverse (k-center greedy on the perceptual-hash bits). `--where` filters first with a
SQL expression over the asset view (`blur > 100 AND width >= 640`). The snapshot pins
the `assets` version, so `Lake(...).snapshot(NAME)` reads back the same assets later.
"""

import sys

from pydantic import Field

from smartray.jobrun import JobSettings, run_job
from smartray.sample import STRATEGIES


class SampleJob(JobSettings):
    """A named snapshot of the lake."""

    name: str = Field(min_length=1, description="snapshot name (never reused)")
    strategy: str = Field("random", description="one of " + ", ".join(STRATEGIES))
    n: int = Field(gt=0, description="assets to draw")
    where: str | None = Field(None, description="SQL filter over the asset view")
    seed: int = Field(0, description="fixes the draw")
    by: str | None = Field(None, description="column for stratified and balanced (default label)")
    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")


def run(cfg: SampleJob) -> str:
    """Draws and stores the snapshot; returns the summary line."""
    from smartray.sample import take_snapshot

    summary = take_snapshot(
        cfg.name,
        strategy=cfg.strategy,
        n=cfg.n,
        lake=cfg.lake,
        where=cfg.where,
        seed=cfg.seed,
        by=cfg.by,
    )
    return summary.line()


def main(argv: list[str] | None = None) -> None:
    """`smartray sample` and `python -m jobs.sample`."""
    args = list(sys.argv[1:] if argv is None else argv)
    # pydantic-settings spells one-letter flags `-n`; `--n` is what users type
    args = ["-n" if a == "--n" else "-n" + a[3:] if a.startswith("--n=") else a for a in args]
    run_job(SampleJob, args, "smartray sample", run)
