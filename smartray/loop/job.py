"""Active-learning rounds: `smartray loop --experiment NAME --split NAME`.

One round: import the labels that came back (`--labels FILE --format F`, approved by
`--approve all`, or left for `smartray review` by `reviewed`), train on them (afresh or
`--fine-tune`), evaluate on val/test, score the pool, select the next batch, export it
with the model's guesses, record the round in `al_rounds` and write the report under
`--out`. `--rounds K --oracle PATH --oracle-format F` simulates K rounds, each batch
answered from a complete label source. `--replay ROUND` selects a recorded round again
from its `al_rounds` row, writes nothing, and exits 1 if the ids differ.
"""

from collections.abc import Iterator

from pydantic import Field, ValidationError

from smartray.errors import ConfigError
from smartray.jobrun import JobSettings, field_from, run_job
from smartray.loop import APPROVE, LoopConfig
from smartray.selection import COLD_START, OBJECTIVES, STRATEGIES, parse_weights


class LoopJob(JobSettings):
    """Whole active-learning rounds, each recorded in `al_rounds`."""

    experiment: str = field_from(LoopConfig, "experiment", description="the experiment")
    split: str = Field("", description="its train side is learnt and picked from; val/test fixed")
    ontology: str | None = field_from(LoopConfig, "ontology", description="default: the only one")
    ontology_version: int | None = field_from(
        LoopConfig, "ontology_version", description="default: the experiment's, else latest"
    )
    budget: int = field_from(LoopConfig, "budget", description="assets per batch")
    strategy: str = field_from(LoopConfig, "strategy", description=", ".join(STRATEGIES))
    cold_start: str = field_from(
        LoopConfig, "cold_start", description=f"first batch, before any label: {COLD_START}"
    )
    weights: str = Field(
        "margin=1,kcenter=1", description=f"weighted: NAME=STRENGTH,... of {', '.join(OBJECTIVES)}"
    )
    class_balance: bool = field_from(
        LoopConfig, "class_balance", description="weighted: rotate over predicted classes"
    )
    where: str | None = field_from(
        LoopConfig, "where", description="narrow the pool: SQL over the asset view"
    )
    mc_dropout: int | None = field_from(
        LoopConfig, "mc_dropout", description="MC passes when scoring (default 10 for bald)"
    )
    seed: int | None = field_from(LoopConfig, "seed", description="round r selects with seed+r")
    labels: list[str] = Field([], description="annotation files that came back (repeatable)")
    format: str | None = field_from(LoopConfig, "format", description="their format")
    annotator: str = field_from(LoopConfig, "annotator", description="who made them")
    image_root: str | None = field_from(
        LoopConfig, "image_root", description="where file names in them point"
    )
    approve: str = Field("reviewed", description=f"what the loop approves: {', '.join(APPROVE)}")
    rounds: int = field_from(LoopConfig, "rounds", description="rounds (more than 1: --oracle)")
    oracle: str | None = field_from(
        LoopConfig, "oracle", description="simulation: a complete label source answers batches"
    )
    oracle_format: str | None = field_from(LoopConfig, "oracle_format", description="its format")
    model: str = field_from(LoopConfig, "model", description="small-cnn, resnet18, module:fn")
    epochs: int = field_from(LoopConfig, "epochs", description="training epochs per round")
    image_size: int = field_from(LoopConfig, "image_size", description="side images resize to")
    batch_size: int = field_from(LoopConfig, "batch_size", description="training batch size")
    lr: float = field_from(LoopConfig, "lr", description="learning rate")
    augment: str = field_from(LoopConfig, "augment", description="training augmentation ops")
    use_gpu: bool = field_from(LoopConfig, "use_gpu", description="train and score on GPUs")
    fine_tune: bool = field_from(
        LoopConfig, "fine_tune", description="start from the experiment's last model"
    )
    slice_by: list[str] = field_from(
        LoopConfig,
        "slice_by",
        description="evaluation slices (repeat)",
        default=list(LoopConfig.model_fields["slice_by"].default),
    )
    export_format: str = field_from(
        LoopConfig, "export_format", description="labelstudio, cvat, coco or yolo"
    )
    out: str = field_from(LoopConfig, "out", description="exports and report.html go under it")
    replay: int | None = Field(None, ge=1, description="select recorded round N again; no write")
    ray_address: str | None = Field(None, description="Ray cluster to join (default: local)")
    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")


def run(cfg: LoopJob) -> str | Iterator[str]:
    """Runs the rounds (yielding their lines), or replays one."""
    if cfg.replay is not None:
        from smartray.loop import replay

        summary = replay(cfg.experiment, cfg.replay, lake=cfg.lake)
        return (
            f"loop --replay {cfg.replay}: experiment {cfg.experiment!r} round {summary.round} "
            f"selected again from its al_rounds row (pinned versions, seed {summary.seed}): "
            f"{len(summary.ids)} ids, identical to the recorded batch"
        )
    if not cfg.split:
        raise ConfigError("--split NAME: the split whose train side the loop learns and picks")
    settings = cfg.model_dump(exclude={"lake", "config", "replay", "weights", "ray_address"})
    try:
        lists = {"labels": tuple(cfg.labels), "slice_by": tuple(cfg.slice_by)}
        config = LoopConfig(**(settings | lists), weights=parse_weights(cfg.weights))
    except ValidationError as e:
        why = (str(err["msg"]).removeprefix("Value error, ") for err in e.errors())
        raise ConfigError("; ".join(why)) from None
    from smartray.loop import loop

    return loop(config, lake=cfg.lake, ray_address=cfg.ray_address)


def main(argv: list[str] | None = None) -> None:
    """`smartray loop` and `python -m jobs.loop`."""
    run_job(LoopJob, argv, "smartray loop", run)
