"""Pick an active-learning batch: `smartray select --experiment NAME --budget N --strategy S`.

Strategies: random, least-confidence, margin, entropy, bald (needs `score
--mc-dropout`), kcenter (core-set on the embeddings), badge (gradient embeddings and
k-means++ seeding), weighted (`--weights margin=1,kcenter=1`: each objective normalised
over the pool, with `--class-balance` over predicted classes). With no model in the
experiment (cold start): random, or kcenter over the stored image descriptors. One
asset per near-duplicate group or video; none sharing one with a labelled or earlier
picked asset. Pools over `--prefilter-over` are two-stage for kcenter, badge and
weighted. The round goes to `batches`; `--replay ROUND` selects a recorded round again
at its pinned versions and seed, writes nothing, and exits 1 if the ids differ.
"""

from pydantic import Field, ValidationError

from smartray.errors import ConfigError
from smartray.jobrun import JobSettings, field_from, run_job
from smartray.selection import OBJECTIVES, PREFILTER_BY, STRATEGIES, SelectConfig, parse_weights


class SelectJob(JobSettings):
    """The experiment's next batch, by a strategy, into `batches`."""

    experiment: str = field_from(SelectConfig, "experiment", description="the experiment")
    budget: int = field_from(SelectConfig, "budget", description="assets to pick")
    strategy: str = field_from(SelectConfig, "strategy", description=", ".join(STRATEGIES))
    model: str = field_from(
        SelectConfig, "model", description="model id, latest, or none (cold start)"
    )
    split: str | None = field_from(
        SelectConfig, "split", description="its val/test stay out (default: the model's)"
    )
    ontology: str | None = field_from(
        SelectConfig, "ontology", description="cold start: whose labels leave the pool"
    )
    ontology_version: int | None = field_from(
        SelectConfig, "ontology_version", description="cold start: its version (default latest)"
    )
    seed: int | None = field_from(SelectConfig, "seed", description="default: drawn, recorded")
    weights: str = Field(
        "margin=1,kcenter=1", description=f"weighted: NAME=STRENGTH,... of {', '.join(OBJECTIVES)}"
    )
    class_balance: bool = field_from(
        SelectConfig, "class_balance", description="weighted: rotate over predicted classes"
    )
    prefilter_over: int = field_from(
        SelectConfig, "prefilter_over", description="pools larger are two-stage"
    )
    prefilter_factor: int = field_from(
        SelectConfig, "prefilter_factor", description="survivors per pick of the first stage"
    )
    prefilter_by: str = field_from(
        SelectConfig, "prefilter_by", description=f"first stage: {', '.join(PREFILTER_BY)}"
    )
    snapshot: str | None = field_from(SelectConfig, "snapshot", description="narrow the pool")
    where: str | None = field_from(SelectConfig, "where", description="SQL over the asset view")
    replay: int | None = Field(None, ge=1, description="select recorded round N again; no write")
    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")


def run(cfg: SelectJob) -> str:
    """Selects and returns the summary line."""
    from smartray.selection import select  # loads the lake: not for `--help`

    settings = cfg.model_dump(exclude={"lake", "config", "replay", "weights"})
    try:
        config = SelectConfig(**settings, weights=parse_weights(cfg.weights))
    except ValidationError as e:
        why = (str(err["msg"]).removeprefix("Value error, ") for err in e.errors())
        raise ConfigError("; ".join(why)) from None
    summary = select(config, lake=cfg.lake, replay=cfg.replay)
    if cfg.replay is not None:
        return (
            f"select --replay {cfg.replay}: experiment {cfg.experiment!r} round "
            f"{summary.round} selected again at its pinned versions and seed: "
            f"{len(summary.ids)} ids, identical to the recorded batch"
        )
    return summary.line()


def main(argv: list[str] | None = None) -> None:
    """`smartray select` and `python -m jobs.select`."""
    run_job(SelectJob, argv, "smartray select", run)
