"""Review labels: `smartray review --approve|--reject|--fix|--resubmit --reviewer NAME`.

Choose annotation events by `--ids ID ...` or `--where EXPR` (SQL over the events and
their `state`, e.g. `annotator = 'ann1' AND class_name = 'cat'`). Each decision is a
`review` event in the ledger; `labels` is rebuilt from the approved annotations.
"""

from pydantic import Field

from smartray.errors import ConfigError
from smartray.jobrun import JobSettings, run_job


class ReviewJob(JobSettings):
    """Review decisions on annotation events."""

    approve: bool = Field(False, description="submitted -> approved")
    reject: bool = Field(False, description="submitted -> rejected")
    fix: bool = Field(False, description="rejected -> fixed")
    resubmit: bool = Field(False, description="fixed -> submitted")
    reviewer: str = Field(description="who decides")
    ids: list[str] = Field([], description="annotation event ids")
    where: str | None = Field(None, description="SQL filter over annotation events and state")
    comment: str | None = Field(None, description="a note kept with each decision")
    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")


def run(cfg: ReviewJob) -> str:
    """Records the decision and returns the summary line."""
    from smartray.annotate import review

    chosen = [d for d in ("approve", "reject", "fix", "resubmit") if getattr(cfg, d)]
    if len(chosen) != 1:
        raise ConfigError("give exactly one of --approve, --reject, --fix, --resubmit")
    summary = review(
        chosen[0],
        reviewer=cfg.reviewer,
        lake=cfg.lake,
        ids=list(cfg.ids),
        where=cfg.where,
        comment=cfg.comment,
    )
    return summary.line()


def main(argv: list[str] | None = None) -> None:
    """`smartray review` and `python -m jobs.review`."""
    run_job(ReviewJob, argv, "smartray review", run)
