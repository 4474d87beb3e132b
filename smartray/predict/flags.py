"""Flags the scoring jobs share (`predict`, `evaluate`); defaults from `PredictConfig`."""

from pydantic import Field

from smartray.jobrun import JobSettings, field_from
from smartray.predict.config import PredictConfig


class ScoringFlags(JobSettings):
    """How a job scores (shared by `predict` and `evaluate`), and where."""

    batch_size: int = field_from(PredictConfig, "batch_size", description="images per call")
    actors: int = field_from(PredictConfig, "actors", description="scoring actors")
    use_gpu: bool = field_from(PredictConfig, "use_gpu", description="one GPU per actor")
    cpus_per_actor: float = field_from(
        PredictConfig, "cpus_per_actor", description="CPUs (and torch threads) per actor"
    )
    resource_wait_s: float = field_from(
        PredictConfig, "resource_wait_s", description="wait this long for missing CPUs/GPUs"
    )
    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")
    ray_address: str | None = Field(None, description="Ray cluster to join (default: local)")
