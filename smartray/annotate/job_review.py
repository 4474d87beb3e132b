"""Review labels: `smartray review --approve|--reject|--fix|--resubmit|--reopen --reviewer NAME`.

Choose annotation events by `--ids ID ...`, by `--where EXPR` (SQL over the events and
their `state`, e.g. `annotator = 'ann1' AND class_name = 'cat'`), or take the queue of
`smartray find-label-issues` with `--from-label-issues [--top N] [--issues-run RUN]`
(the approved labels it suspects, most likely errors first; `--reopen` sends them back
to `submitted`, out of `labels`). Each decision is a `review` event in the ledger;
`labels` is rebuilt from the approved annotations.
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
    reopen: bool = Field(False, description="approved -> submitted (a suspected error)")
    reviewer: str = Field(description="who decides")
    ids: list[str] = Field([], description="annotation event ids")
    where: str | None = Field(None, description="SQL filter over annotation events and state")
    from_label_issues: bool = Field(False, description="the labels find-label-issues suspects")
    top: int | None = Field(None, ge=1, description="with --from-label-issues: the first N")
    issues_run: str | None = Field(
        None, description="with --from-label-issues: that run's issues (default: latest)"
    )
    comment: str | None = Field(None, description="a note kept with each decision")
    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")


def run(cfg: ReviewJob) -> str:
    """Records the decision and returns the summary line."""
    from smartray.annotate import review

    decisions = ("approve", "reject", "fix", "resubmit", "reopen")
    chosen = [d for d in decisions if getattr(cfg, d)]
    if len(chosen) != 1:
        raise ConfigError(f"give exactly one of {', '.join('--' + d for d in decisions)}")
    ids = list(cfg.ids)
    if cfg.from_label_issues:
        from smartray.annotate import issue_queue
        from smartray.tables import Lake

        if ids or cfg.where:
            raise ConfigError("--from-label-issues chooses the labels: no --ids or --where")
        queue = issue_queue(Lake(cfg.lake), cfg.issues_run, cfg.top)
        ids = queue["label_id"].to_pylist()
    elif cfg.top is not None or cfg.issues_run is not None:
        raise ConfigError("--top and --issues-run go with --from-label-issues")
    summary = review(
        chosen[0],
        reviewer=cfg.reviewer,
        lake=cfg.lake,
        ids=ids,
        where=cfg.where,
        comment=cfg.comment,
    )
    return summary.line()


def main(argv: list[str] | None = None) -> None:
    """`smartray review` and `python -m jobs.review`."""
    run_job(ReviewJob, argv, "smartray review", run)
