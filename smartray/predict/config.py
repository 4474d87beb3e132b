"""Settings of `smartray predict` (`smartray/predict/job_predict.py` makes its flags)."""

from pydantic import BaseModel, ConfigDict, Field


class Scoring(BaseModel):
    """How scoring runs: what `predict` and `evaluate` (for the pairs it lacks) share.

    Attributes:
        batch_size: Images per model call.
        actors: Scoring actors (each holds one model; one GPU each with `use_gpu`).
        use_gpu: Score on GPUs (mixed precision).
        cpus_per_actor: CPUs each actor holds (and its torch threads).
        resource_wait_s: On a joined cluster, how long to wait for the CPUs and GPUs the
            actors need (an autoscaler adding workers) before failing.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_size: int = Field(256, ge=1, le=65_536)
    actors: int = Field(1, ge=1)
    use_gpu: bool = False
    cpus_per_actor: float = Field(1.0, gt=0)
    resource_wait_s: float = Field(120.0, ge=0)

    def scoring(self) -> dict[str, object]:
        """These settings alone, to build another config from."""
        return {name: getattr(self, name) for name in Scoring.model_fields}


class PredictConfig(Scoring):
    """Which model scores which assets, and how (the scoring settings: `Scoring`).

    Attributes:
        model: A model id, or `latest` (the newest, of `experiment` if given).
        experiment: Narrows `latest`; with an id, must be that model's experiment.
        split: Score the assets of this split (`side` narrows it to some sides).
        side: Sides of `split` to score (`val`, `test`, ...); empty: every side.
        snapshot: Score the members of this snapshot.
        where: A SQL filter over the asset view (`blur > 100 AND format = 'png'`).
    """

    model: str = Field("latest", min_length=1)
    experiment: str | None = None
    split: str | None = None
    side: tuple[str, ...] = ()
    snapshot: str | None = None
    where: str | None = None


class EvaluateConfig(Scoring):
    """Which model is evaluated on which side of which split, sliced how.

    Its scoring settings (`Scoring`) score the pairs not predicted yet.

    Attributes:
        model, experiment: As for `PredictConfig`.
        split: The split whose `on` side is evaluated.
        on: The side (`val`, `test`; any side the split has).
        slice_by: Columns reachable from the asset to slice by (`evaluation.SLICE_COLUMNS`).
    """

    model: str = Field("latest", min_length=1)
    experiment: str | None = None
    split: str = Field(min_length=1)
    on: str = Field("val", min_length=1)
    slice_by: tuple[str, ...] = ()


class LabelIssuesConfig(BaseModel):
    """How `smartray find-label-issues` trains its fold models and scores them.

    Attributes:
        split: The split whose labelled assets (every side) are checked.
        folds: K: each asset is scored by a model trained on the other K-1 folds.
        seed: Fixes the fold assignment and the fold models' training.
        ontology, ontology_version: As for `smartray train` (None: the only one, latest).
        model, image_size, epochs, batch_size, lr, augment, use_gpu: The fold models'
            training (`TrainConfig`'s meaning).
        actors: Scoring actors for the held-out assets.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    split: str = Field(min_length=1)
    folds: int = Field(5, ge=2, le=100)
    seed: int = 0
    ontology: str | None = None
    ontology_version: int | None = Field(None, ge=1)
    model: str = "small-cnn"
    image_size: int = Field(32, ge=8, le=1024)
    epochs: int = Field(5, ge=1, le=10_000)
    batch_size: int = Field(64, ge=1, le=65_536)
    lr: float = Field(1e-3, gt=0, le=10)
    augment: str = "crop:0.9,jitter:0.1"
    use_gpu: bool = False
    actors: int = Field(1, ge=1)
