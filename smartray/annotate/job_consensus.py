"""Merge several annotators' labels: `smartray consensus [--min-agreement 0.7] [--iou 0.5]`.

Majority vote for classes and tags, IoU clustering for boxes; each consensus object
carries an agreement score. Assets at or above `--min-agreement` get their consensus
approved; the rest are queued for review. Prints agreement per annotator and class,
Fleiss' kappa and pairwise Cohen's kappa.
"""

from pydantic import Field

from smartray.annotate import IOU, MIN_AGREEMENT
from smartray.jobrun import JobSettings, run_job


class ConsensusJob(JobSettings):
    """Consensus labels and annotator agreement."""

    min_agreement: float = Field(MIN_AGREEMENT, ge=0, le=1, description="approve at or above this")
    iou: float = Field(IOU, ge=0, le=1, description="boxes overlapping this much are one")
    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")


def run(cfg: ConsensusJob) -> str:
    """Runs consensus and returns the report."""
    from smartray.annotate import consensus

    report = consensus(lake=cfg.lake, min_agreement=cfg.min_agreement, iou_threshold=cfg.iou)
    return "\n".join(report.lines())


def main(argv: list[str] | None = None) -> None:
    """`smartray consensus` and `python -m jobs.consensus`."""
    run_job(ConsensusJob, argv, "smartray consensus", run)
