"""Settings of a training run (`smartray/train/job.py` makes its flags from them)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class TrainConfig(BaseModel):
    """What to train on, which model, and how.

    Attributes:
        split: The split whose `train` side is learnt and whose `val` side picks the epoch.
        ontology: Ontology name (None: the only one registered).
        ontology_version: Its version (None: the latest).
        experiment: Groups models: `latest` of an experiment is its newest model.
        model: `small-cnn`, `resnet18` or `module:factory` (`smartray/train/nets.py`).
        init_weights: A safetensors file of pretrained weights (names and shapes that
            match are loaded; a differing head is left out).
        init_model: Fine-tune: start from this recorded model's best checkpoint (an id, or
            `latest`: the experiment's newest model), loaded as `init_weights` is; the
            resolved id is recorded.
        image_size: Side the images are resized to.
        augment: `smartray augment` ops applied on the fly to training images, seeded by
            run seed, epoch and asset (`none`: no augmentation).
        epochs, batch_size, lr, weight_decay: The optimisation (AdamW, cosine schedule).
        class_weights: `auto` weighs the loss by inverse class frequency.
        early_stop_patience: Stop after this many epochs without a better `val` accuracy.
        seed: Fixes initialisation, augmentation and shuffling.
        workers, use_gpu, gpus_per_worker, cpus_per_worker: Ray Train's scaling.
        max_failures: Times a lost worker group is restarted from the last checkpoint.
        gpu_wait_s: How long to wait for GPUs the cluster does not have before failing.
        model_timeout_s: Seconds a `module:factory` may take to build the model; one
            that takes longer stops the run (exit 1), naming the factory.
        mlflow_tracking_uri: Also log the run to this MLflow tracking store (`tracking.py`).
        allow_unseen_classes: Train even when `val` holds classes `train` has no example
            of yet (an early active-learning round); they count as errors.
        resume: A model id whose run stopped before its last epoch: continue it from its
            last checkpoint, with its own settings and pinned versions (the others given
            are not used).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    split: str = ""
    ontology: str | None = None
    ontology_version: int | None = Field(None, ge=1)
    experiment: str = Field("default", min_length=1)
    model: str = "small-cnn"
    init_weights: str | None = None
    init_model: str | None = Field(None, min_length=1)
    image_size: int = Field(32, ge=8, le=1024)
    augment: str = "crop:0.9,jitter:0.1"
    epochs: int = Field(5, ge=1, le=10_000)
    batch_size: int = Field(64, ge=1, le=65_536)
    lr: float = Field(1e-3, gt=0, le=10)
    weight_decay: float = Field(1e-4, ge=0, le=1)
    class_weights: Literal["auto", "none"] = "auto"
    early_stop_patience: int | None = Field(None, ge=1)
    seed: int = 0
    workers: int = Field(1, ge=1)
    use_gpu: bool = False
    gpus_per_worker: float = Field(1.0, gt=0)
    cpus_per_worker: float = Field(1.0, gt=0)
    max_failures: int = Field(2, ge=0)
    gpu_wait_s: float = Field(120.0, gt=0)
    model_timeout_s: float = Field(300.0, gt=0)
    mlflow_tracking_uri: str | None = None
    allow_unseen_classes: bool = False
    resume: str | None = None

    @model_validator(mode="after")
    def _one_start(self) -> TrainConfig:
        if self.init_weights and self.init_model:
            raise ValueError("give --init-weights FILE or --init-model MODEL, not both")
        return self

    @field_validator("mlflow_tracking_uri")
    @classmethod
    def _no_credentials(cls, uri: str | None) -> str | None:
        """The URI is recorded with the run: credentials go in MLflow's own variables."""
        if uri and urlsplit(uri).password is not None:
            raise ValueError(
                "mlflow_tracking_uri carries a password: it would be recorded in `runs`; "
                "set MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD instead"
            )
        return uri
