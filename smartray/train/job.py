"""Train a classifier: `smartray train --split NAME [--model small-cnn] [--epochs 5]`.

Learns the approved image-level `class` labels of one ontology version on the `train`
side of a split, keeps the epoch with the best `val` accuracy, and records the model in
the `models` table (its id is the run id). Checkpoints go to the lake's storage under
`checkpoints/<model id>/`. Flags take their defaults and bounds from `TrainConfig`.
"""

from typing import Literal

from pydantic import Field, ValidationError

from smartray.errors import ConfigError
from smartray.jobrun import JobSettings, field_from, run_job
from smartray.train import TrainConfig


class TrainJob(JobSettings):
    """An image classifier on Ray Train, from pinned lake versions."""

    split: str = field_from(TrainConfig, "split", description="split to learn (train / val)")
    ontology: str | None = field_from(TrainConfig, "ontology", description="ontology name")
    ontology_version: int | None = field_from(
        TrainConfig, "ontology_version", description="ontology version (default: latest)"
    )
    experiment: str = field_from(TrainConfig, "experiment", description="experiment name")
    model: str = field_from(
        TrainConfig, "model", description="small-cnn, resnet18 or module:factory"
    )
    init_weights: str | None = field_from(
        TrainConfig, "init_weights", description="pretrained weights, a .safetensors file"
    )
    init_model: str | None = field_from(
        TrainConfig, "init_model", description="fine-tune a recorded model: its id, or latest"
    )
    image_size: int = field_from(TrainConfig, "image_size", description="image side in px")
    augment: str = field_from(
        TrainConfig, "augment", description="augment ops on training images, or none"
    )
    epochs: int = field_from(TrainConfig, "epochs", description="epochs")
    batch_size: int = field_from(TrainConfig, "batch_size", description="batch size")
    lr: float = field_from(TrainConfig, "lr", description="learning rate (AdamW)")
    weight_decay: float = field_from(TrainConfig, "weight_decay", description="weight decay")
    class_weights: Literal["auto", "none"] = field_from(
        TrainConfig, "class_weights", description="auto: weigh the loss by inverse frequency"
    )
    early_stop_patience: int | None = field_from(
        TrainConfig, "early_stop_patience", description="stop after N epochs without progress"
    )
    seed: int = field_from(TrainConfig, "seed", description="fixes init, augmentation, order")
    workers: int = field_from(TrainConfig, "workers", description="Ray Train workers")
    use_gpu: bool = field_from(TrainConfig, "use_gpu", description="train on GPUs")
    gpus_per_worker: float = field_from(TrainConfig, "gpus_per_worker", description="GPUs each")
    cpus_per_worker: float = field_from(TrainConfig, "cpus_per_worker", description="CPUs each")
    max_failures: int = field_from(
        TrainConfig, "max_failures", description="restarts from the last checkpoint"
    )
    gpu_wait_s: float = field_from(
        TrainConfig, "gpu_wait_s", description="seconds to wait for missing GPUs, then fail"
    )
    model_timeout_s: float = field_from(
        TrainConfig, "model_timeout_s", description="seconds a module:factory may take; then exit 1"
    )
    mlflow_tracking_uri: str | None = field_from(
        TrainConfig, "mlflow_tracking_uri", description="also log to MLflow (the mlflow extra)"
    )
    allow_unseen_classes: bool = field_from(
        TrainConfig, "allow_unseen_classes", description="train though val has unseen classes"
    )
    resume: str | None = field_from(
        TrainConfig, "resume", description="model id of a stopped run to continue"
    )
    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")
    ray_address: str | None = Field(None, description="Ray cluster to join (default: local)")


def run(cfg: TrainJob) -> str:
    """Trains and returns the summary line."""
    from smartray.train import train  # loads Ray: not for `--help`

    settings = cfg.model_dump(exclude={"lake", "ray_address", "config"})
    try:
        config = TrainConfig(**settings)
    except ValidationError as e:  # TrainConfig's own checks (a password in a URI): exit 2
        raise ConfigError(str(e)) from None
    return train(config, lake=cfg.lake, ray_address=cfg.ray_address).line()


def main(argv: list[str] | None = None) -> None:
    """`smartray train` and `python -m jobs.train`."""
    run_job(TrainJob, argv, "smartray train", run)
