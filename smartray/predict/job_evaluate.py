"""Evaluate a model: `smartray evaluate --model ID|latest --split NAME --on val [--slice-by COL]`.

Accuracy, per-class precision / recall / F1, the confusion matrix and the expected
calibration error on one side of a split, overall and per slice of each `--slice-by`
column (`smartray.predict.evaluation.SLICE_COLUMNS`), each slice with a Wilson 95 %
interval and flagged when significantly worse than the rest. Rows go to
`evaluations`; the worst slices are printed first. Assets the model has not scored yet
are predicted first (into `predictions`).
"""

from smartray.jobrun import field_from, run_job
from smartray.predict import EvaluateConfig, ScoringFlags


class EvaluateJob(ScoringFlags):
    """A model's metrics on one side of a split, overall and per slice."""

    model: str = field_from(EvaluateConfig, "model", description="model id, or latest")
    experiment: str | None = field_from(
        EvaluateConfig, "experiment", description="narrows latest to this experiment"
    )
    split: str = field_from(EvaluateConfig, "split", description="split to evaluate on")
    on: str = field_from(EvaluateConfig, "on", description="its side: val, test, ...")
    slice_by: list[str] = field_from(
        EvaluateConfig, "slice_by", description="columns to slice by (repeat)", default=[]
    )


def run(cfg: EvaluateJob) -> str:
    """Evaluates and returns the summary (the worst slices on the lines after it)."""
    from smartray.predict import evaluate  # loads Ray: not for `--help`

    settings = cfg.model_dump(exclude={"lake", "ray_address", "config"})
    config = EvaluateConfig(**{**settings, "slice_by": tuple(cfg.slice_by)})
    return evaluate(config, lake=cfg.lake, ray_address=cfg.ray_address).line()


def main(argv: list[str] | None = None) -> None:
    """`smartray evaluate` and `python -m jobs.evaluate`."""
    run_job(EvaluateJob, argv, "smartray evaluate", run)
