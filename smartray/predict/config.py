"""Settings of `smartray predict` (`smartray/predict/job_predict.py` makes its flags)."""

from pydantic import BaseModel, ConfigDict, Field


class PredictConfig(BaseModel):
    """Which model scores which assets, and how.

    Attributes:
        model: A model id, or `latest` (the newest, of `experiment` if given).
        experiment: Narrows `latest`; with an id, must be that model's experiment.
        split: Score the assets of this split (`side` narrows it to some sides).
        side: Sides of `split` to score (`val`, `test`, ...); empty: every side.
        snapshot: Score the members of this snapshot.
        where: A SQL filter over the asset view (`blur > 100 AND format = 'png'`).
        batch_size: Images per model call.
        actors: Scoring actors (each holds one model; one GPU each with `use_gpu`).
        use_gpu: Score on GPUs (mixed precision).
        cpus_per_actor: CPUs each actor holds (and its torch threads).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field("latest", min_length=1)
    experiment: str | None = None
    split: str | None = None
    side: tuple[str, ...] = ()
    snapshot: str | None = None
    where: str | None = None
    batch_size: int = Field(256, ge=1, le=65_536)
    actors: int = Field(1, ge=1)
    use_gpu: bool = False
    cpus_per_actor: float = Field(1.0, gt=0)


class EvaluateConfig(BaseModel):
    """Which model is evaluated on which side of which split, sliced how.

    Attributes:
        model, experiment: As for `PredictConfig`.
        split: The split whose `on` side is evaluated.
        on: The side (`val`, `test`; any side the split has).
        slice_by: Columns reachable from the asset to slice by (`evaluation.SLICE_COLUMNS`).
        batch_size, actors, use_gpu, cpus_per_actor: For the pairs not predicted yet.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field("latest", min_length=1)
    experiment: str | None = None
    split: str = Field(min_length=1)
    on: str = Field("val", min_length=1)
    slice_by: tuple[str, ...] = ()
    batch_size: int = Field(256, ge=1, le=65_536)
    actors: int = Field(1, ge=1)
    use_gpu: bool = False
    cpus_per_actor: float = Field(1.0, gt=0)
