"""Score an experiment's pool: `smartray score --experiment NAME [--model ID|latest]`.

`predict` on the pool: the assets with no approved label for the model's ontology,
never those on the `val` or `test` side of the model's split, narrowed by `--snapshot`
or `--where`; the labelled `train` assets are scored too (k-center measures distance
from them). `--mc-dropout N` adds N Monte-Carlo-dropout passes per image and fills
`mutual_info` (BALD); a model without dropout layers is refused. Flags take their
defaults and bounds from `ScoreConfig`.
"""

from smartray.jobrun import field_from, run_job
from smartray.predict import ScoringFlags
from smartray.selection import ScoreConfig


class ScoreJob(ScoringFlags):
    """A model of the experiment scores its pool into `predictions`."""

    experiment: str = field_from(ScoreConfig, "experiment", description="the experiment")
    model: str = field_from(ScoreConfig, "model", description="model id, or latest")
    snapshot: str | None = field_from(ScoreConfig, "snapshot", description="narrow the pool")
    where: str | None = field_from(ScoreConfig, "where", description="SQL over the asset view")
    mc_dropout: int = field_from(
        ScoreConfig, "mc_dropout", description="Monte-Carlo-dropout passes (BALD); 0: none"
    )


def run(cfg: ScoreJob) -> str:
    """Scores and returns the summary line."""
    from smartray.selection import score  # loads Ray: not for `--help`

    config = ScoreConfig(**cfg.model_dump(exclude={"lake", "ray_address", "config"}))
    return score(config, lake=cfg.lake, ray_address=cfg.ray_address).line()


def main(argv: list[str] | None = None) -> None:
    """`smartray score` and `python -m jobs.score`."""
    run_job(ScoreJob, argv, "smartray score", run)
