"""Score assets with a model: `smartray predict --model ID|latest [--split NAME] ...`.

Writes class probabilities, predicted class, confidence, margin, entropy and the
embedding of each (model, asset) pair into `predictions`; pairs already there are not
scored again. Assets: a split (`--side` narrows it), a snapshot, a `--where` over the
asset view, or all; several given: the assets they share. Flags take their defaults
and bounds from `PredictConfig`.
"""

from smartray.jobrun import field_from, run_job
from smartray.predict import PredictConfig, ScoringFlags


class PredictJob(ScoringFlags):
    """A recorded model scores assets through Ray Data into `predictions`."""

    model: str = field_from(PredictConfig, "model", description="model id, or latest")
    experiment: str | None = field_from(
        PredictConfig, "experiment", description="narrows latest to this experiment"
    )
    split: str | None = field_from(PredictConfig, "split", description="score this split")
    side: list[str] = field_from(
        PredictConfig, "side", description="sides of the split (default all)", default=[]
    )
    snapshot: str | None = field_from(PredictConfig, "snapshot", description="score a snapshot")
    where: str | None = field_from(PredictConfig, "where", description="SQL over the asset view")


def run(cfg: PredictJob) -> str:
    """Scores and returns the summary line."""
    from smartray.predict import predict  # loads Ray: not for `--help`

    settings = cfg.model_dump(exclude={"lake", "ray_address", "config"})
    config = PredictConfig(**{**settings, "side": tuple(cfg.side)})
    return predict(config, lake=cfg.lake, ray_address=cfg.ray_address).line()


def main(argv: list[str] | None = None) -> None:
    """`smartray predict` and `python -m jobs.predict`."""
    run_job(PredictJob, argv, "smartray predict", run)
