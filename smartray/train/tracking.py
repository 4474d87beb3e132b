"""Experiment tracking where users already look: a finished training run, in MLflow.

`smartray train --mlflow-tracking-uri URI` logs the run to an MLflow tracking store (a
server, or a `sqlite:///` database): one MLflow run per model, named by the model id, in
an MLflow experiment named like the smartray one. It holds the settings as params, every
epoch's train/val loss and accuracy as metrics (step = epoch), and tags that point back
at the lake: the model id, the lake, the best epoch's checkpoint URI and its sha256.
The metrics are logged when training ends (a resumed run logs all its epochs then); the
lake's `models` row stays the record.

MLflow is an optional extra (`pip install 'smartray[mlflow]'`): without the flag nothing
here imports it.
"""

from __future__ import annotations

import json
from typing import Any

from smartray.errors import ConfigError

METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
BATCH = 1000


def check(uri: str) -> None:
    """Fails before training when MLflow is not installed or the store does not answer.

    Raises:
        ConfigError: the `mlflow` extra is missing, or the tracking store refuses.
    """
    try:
        import mlflow
    except ImportError as e:
        raise ConfigError(
            f"--mlflow-tracking-uri {uri}: MLflow is not installed; "
            "`pip install 'smartray[mlflow]'`"
        ) from e
    try:
        mlflow.MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as e:  # the store's own error says what is wrong; any kind is fatal here
        raise ConfigError(f"--mlflow-tracking-uri {uri}: the tracking store refused: {e}") from e


def log_run(uri: str, lake: str, model: dict[str, Any], history: list[dict[str, Any]]) -> str:
    """Logs a finished model (its `models` row and per-epoch history); returns the run id.

    Args:
        uri: The MLflow tracking URI.
        lake: The lake's URI.
        model: The model's `models` row.
        history: Each epoch's metrics, in epoch order.
    """
    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(model["experiment"])
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(model["experiment"])
    )
    run = client.create_run(experiment_id, run_name=model["model_id"])
    run_id: str = run.info.run_id
    config = json.loads(model["config"])
    params = {
        **{k: v for k, v in config.items() if k != "mlflow_tracking_uri"},
        "ontology": model["ontology"],
        "ontology_version": model["ontology_version"],
        "split_name": model["split_name"],
        "assets_version": model["assets_version"],
        "labels_version": model["labels_version"],
        "splits_version": model["splits_version"],
        "train_assets": model["train_assets"],
        "val_assets": model["val_assets"],
    }
    tags = {
        "smartray.model_id": model["model_id"],
        "smartray.run_id": model["run_id"],
        "smartray.lake": lake,
        "smartray.checkpoint_uri": model["checkpoint_uri"],
        "smartray.checkpoint_sha256": model["checkpoint_sha256"],
        "smartray.best_epoch": str(model["best_epoch"]),
    }
    now = int(model["trained_at"].timestamp() * 1000)
    metrics = [
        Metric(key, float(h[key]), now, int(h["epoch"]))
        for h in history
        for key in METRICS
        if h.get(key) is not None
    ]
    metrics.append(Metric("best_val_accuracy", float(model["best_val_accuracy"]), now, 0))
    client.log_batch(
        run_id,
        params=[Param(k, str(v)) for k, v in sorted(params.items())],
        tags=[RunTag(k, v) for k, v in tags.items()],
    )
    for start in range(0, len(metrics), BATCH):  # MLflow takes 1,000 metrics a call
        client.log_batch(run_id, metrics=metrics[start : start + BATCH])
    client.set_terminated(run_id)
    return run_id
