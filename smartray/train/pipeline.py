"""`smartray train`: an image classifier on Ray Train, from pinned lake versions.

1. Pin `assets`, `labels` and `splits`; select the approved class labels of one ontology
   version on the named split (`inputs.select`: the bad inputs are refused here, before
   anything starts).
2. Build the input as Ray Data streams over the pinned `assets` version: `val`, and one
   training dataset per epoch whose augmentation is seeded by that epoch. The driver
   reads ids and labels only, never image bytes.
3. Run `TorchTrainer` (`loop.train_loop`) with checkpoints in the lake's storage under
   `checkpoints/<model id>/` and `FailureConfig(max_failures)`.
4. Commit one `models` row: the pinned versions, the class map, every epoch's metrics and
   checkpoint (URI and the sha256 of its files), the best epoch by `val` accuracy.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import ray
import ray.data
import ray.train
import torch
from ray.train.torch import TorchTrainer

from smartray.annotate.ledger import ontology_for
from smartray.augment.ops import parse_ops
from smartray.cluster.local import ensure_ray
from smartray.errors import ConfigError, SmartrayError
from smartray.tables import ASSETS, Lake, RunSummary
from smartray.tables.catalog import LABELS, MODELS, SPLITS
from smartray.train import checkpoint, nets, tracking
from smartray.train.config import TrainConfig
from smartray.train.inputs import LABEL_COLUMNS, SPLIT_COLUMNS, read_decode, select
from smartray.train.loop import train_loop

log = logging.getLogger(__name__)


RUN_FILE = "smartray-run.json"  # beside Ray Train's files: settings and pinned versions


class TrainingStopped(SmartrayError):
    """Training stopped before its last epoch (its checkpoints stay: `--resume` it)."""


@dataclass
class TrainSummary(RunSummary):
    """What a training run did: the model id, its best epoch and `val` accuracy."""

    model_id: str = ""
    mlflow_run_id: str | None = None
    init_model: str | None = None  # the model it started from (`--init-model`, resolved)

    def line(self) -> str:
        """The job's summary line."""
        c = self.counts
        head = (
            f"train {self.run_id}: model {self.model_id}, {c['train']} train / {c['val']} val "
            f"assets, {c['classes']} classes; best epoch {c['best_epoch']} "
            f"(val accuracy {c['best_val_accuracy_pct'] / 100:.2f} %); "
            f"left out: {c['left_out']}"
        )
        if c.get("val_unseen_classes"):
            head += f"; val holds {c['val_unseen_classes']} class(es) train has no example of"
        return head + (f"; mlflow run {self.mlflow_run_id}" if self.mlflow_run_id else "")


def _check_model(
    config: TrainConfig, num_classes: int, start: dict[str, torch.Tensor] | None
) -> None:
    """Builds the model once on the driver: a bad `--model` or weights fail before Ray."""
    model = nets.build(config.model, num_classes, timeout_s=config.model_timeout_s)
    if config.init_weights:
        start = checkpoint.read_weights(config.init_weights)
    if start is not None:
        skipped = checkpoint.apply_weights(model, start)
        if skipped:
            log.info("initial weights: %d tensor(s) left out (%s)", len(skipped), skipped[:4])


def _initial_model(lk: Lake, config: TrainConfig) -> tuple[str, dict[str, torch.Tensor]]:
    """`--init-model`: the model's id (`latest` resolved) and its checked best weights.

    Raises:
        ConfigError: no models, an unknown id, or `latest` of an experiment without one.
    """
    cols = ["model_id", "experiment", "trained_at", "checkpoint_uri", "checkpoint_sha256"]
    rows = lk.table(MODELS.name, columns=cols).to_pylist() if lk.exists(MODELS.name) else []
    if config.init_model == "latest":
        rows = [r for r in rows if r["experiment"] == config.experiment]
        rows = sorted(rows, key=lambda r: (r["trained_at"], r["model_id"]))[-1:]
    else:
        rows = [r for r in rows if r["model_id"] == config.init_model]
    if not rows:
        which = f"experiment {config.experiment!r} has no model yet" if (
            config.init_model == "latest") else "no model of that id"  # fmt: skip
        raise ConfigError(f"--init-model {config.init_model}: {which}")
    row = rows[0]
    weights = checkpoint.fetch_weights(
        lk.location, row["checkpoint_uri"], json.loads(row["checkpoint_sha256"]),
        f"--init-model {row['model_id']}",
    )  # fmt: skip
    return row["model_id"], weights


def _gpu_available(wait_s: float, needed: float) -> None:
    """Waits up to `wait_s` for the cluster to show `needed` GPUs; raises if it never does."""
    deadline = time.monotonic() + wait_s
    while True:
        have = float(ray.cluster_resources().get("GPU", 0))  # type: ignore[no-untyped-call]
        if have >= needed:
            return
        if time.monotonic() >= deadline:
            raise ConfigError(
                f"--use-gpu: the cluster has {have:g} GPU(s), the run needs {needed:g}; "
                f"none appeared within {wait_s:g} s (add a GPU worker group, or drop --use-gpu)"
            )
        time.sleep(min(5.0, wait_s))


def train(
    config: TrainConfig, *, lake: str | None = None, ray_address: str | None = None
) -> TrainSummary:
    """Trains a classifier and records it in `models`.

    Raises:
        ConfigError: no labels, a bad split, a bad model or weights, a GPU the cluster
            lacks: nothing trained or written.
    """
    if not config.split and not config.resume:
        raise ConfigError("--split NAME: the split to learn (or --resume MODEL_ID)")
    lk = Lake(lake)
    pinned: dict[str, int | None] = {}
    model_id = config.resume
    if config.resume:
        config, pinned = _stopped_run(lk, config.resume)
    ontology = ontology_for(lk, config.ontology, config.ontology_version)
    start: dict[str, torch.Tensor] | None = None
    if config.init_model:  # recorded as the id it resolved to
        found, start = _initial_model(lk, config)
        config = config.model_copy(update={"init_model": found})
    ops = parse_ops(config.augment) if config.augment != "none" else None
    session = lk.session("train", config.model_dump(mode="json"))
    model_id = model_id or session.run_id
    specs = (ASSETS, LABELS, SPLITS)
    versions = {spec.name: session.pin(spec, pinned.get(spec.name)) for spec in specs}
    if any(v is None for v in versions.values()):
        missing = [k for k, v in versions.items() if v is None]
        raise ConfigError(f"table(s) {missing} do not exist yet: ingest, label and split first")
    chosen = select(
        session.read(LABELS, columns=LABEL_COLUMNS),
        session.read(SPLITS, columns=SPLIT_COLUMNS),
        ontology=ontology,
        split=config.split,
        allow_unseen=config.allow_unseen_classes,
    )
    _check_model(config, len(chosen.classes), start)
    if config.mlflow_tracking_uri:
        tracking.check(config.mlflow_tracking_uri)
    if not config.resume:
        _write_run_file(lk, model_id, config, versions)
    log.info("model %s: checkpoints in %s/checkpoints/%s", model_id, lk.uri, model_id)
    started = ensure_ray(ray_address)
    try:
        if config.use_gpu:
            _gpu_available(config.gpu_wait_s, config.gpus_per_worker * config.workers)
        result = _fit(lk, model_id, versions["assets"] or 0, config, chosen, ops, start)
    except ray.train.TrainingFailedError as e:
        raise _stopped(model_id, e) from e
    finally:
        if started:
            ray.shutdown()
    if result.error is not None:
        raise _stopped(model_id, result.error)
    checkpoints, history = _checkpoints(result)
    if not history:
        raise RuntimeError(f"training run {session.run_id} reported no epoch")
    best = max(history, key=lambda h: (h["val_accuracy"], -h["epoch"]))
    best_ckpt = next(c for c in checkpoints if c["epoch"] == best["epoch"])
    row = {
        "model_id": model_id,
        "experiment": config.experiment,
        "architecture": config.model,
        "config": json.dumps(config.model_dump(mode="json"), sort_keys=True),
        "ontology": ontology.name,
        "ontology_version": ontology.version,
        "classes": json.dumps(chosen.classes),
        "split_name": config.split,
        "assets_version": versions["assets"],
        "labels_version": versions["labels"],
        "splits_version": versions["splits"],
        "train_assets": chosen.counts["train"],
        "val_assets": chosen.counts["val"],
        "best_epoch": best["epoch"],
        "last_epoch": history[-1]["epoch"],
        "best_val_accuracy": best["val_accuracy"],
        "checkpoint_uri": best_ckpt["uri"],
        "checkpoint_sha256": json.dumps(best_ckpt["sha256"], sort_keys=True),
        "checkpoints": json.dumps(checkpoints),
        "epochs": json.dumps(history),
        "run_id": session.run_id,
        "trained_at": dt.datetime.now(dt.UTC),
    }
    session.commit(MODELS, [row], mode="upsert")
    left_out = {
        k: v for k, v in chosen.counts.items()
        if k not in ("train", "val", "val_unseen_classes") and v
    }  # fmt: skip
    session.counts.update(
        {
            "train": chosen.counts["train"],
            "val": chosen.counts["val"],
            "classes": len(chosen.classes),
            "epochs": len(history),
            "best_epoch": best["epoch"],
            "best_val_accuracy_pct": round(best["val_accuracy"] * 10_000),
            "left_out": sum(left_out.values()),
            "val_unseen_classes": chosen.counts.get("val_unseen_classes", 0),
            **{f"left_out_{k}": v for k, v in left_out.items()},
        }
    )
    session.record()
    summary = TrainSummary.of(session.run)
    summary.model_id, summary.init_model = model_id, config.init_model
    if config.mlflow_tracking_uri:
        try:
            summary.mlflow_run_id = tracking.log_run(
                config.mlflow_tracking_uri, lk.uri, row, history
            )
        except Exception as e:  # the model is recorded in the lake: say so, do not fail it
            log.warning("model %s is recorded, but logging it to MLflow failed: %s", model_id, e)
            summary.mlflow_run_id = "not logged (see the warning)"
    for h in history:
        log.info(
            "epoch %d: train loss %.4f acc %.4f, val loss %.4f acc %.4f (%.1f s)",
            h["epoch"], h["train_loss"], h["train_accuracy"], h["val_loss"],
            h["val_accuracy"], h["seconds"],
        )  # fmt: skip
    return summary


def _fit(
    lk: Lake,
    model_id: str,
    assets_version: int,
    config: TrainConfig,
    chosen: Any,
    ops: list[dict[str, Any]] | None,
    start: dict[str, torch.Tensor] | None = None,
) -> ray.train.Result:
    """Builds the datasets and runs the trainer; returns its result.

    `start`: initial weights (`--init-model`), handed to the workers through the object
    store, so a worker on another node needs no file of the driver's.
    """
    datasets: dict[str, Any] = {"val": stream(lk, assets_version, chosen.val, config, 0, None)}
    for epoch in range(config.epochs):
        datasets[f"train-{epoch}"] = stream(lk, assets_version, chosen.train, config, epoch, ops)
    loop_config = {
        **config.model_dump(mode="json"),
        "classes": chosen.classes,
        "class_weights": chosen.class_weights() if config.class_weights == "auto" else [],
        "init_state": None if start is None else ray.put(start),
    }
    fs, root = lk.location.filesystem()
    resources = {"CPU": config.cpus_per_worker}
    if config.use_gpu:
        resources["GPU"] = config.gpus_per_worker
    trainer = TorchTrainer(
        train_loop,
        train_loop_config=loop_config,
        datasets=datasets,
        scaling_config=ray.train.ScalingConfig(
            num_workers=config.workers, use_gpu=config.use_gpu, resources_per_worker=resources
        ),
        run_config=ray.train.RunConfig(
            name=model_id,
            storage_path=f"{root}/checkpoints",
            storage_filesystem=fs,
            failure_config=ray.train.FailureConfig(max_failures=config.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=None),
        ),
    )
    return trainer.fit()


def stream(
    lake: Lake,
    assets_version: int,
    labels: pa.Table,
    config: TrainConfig,
    epoch: int,
    ops: list[dict[str, Any]] | None,
) -> ray.data.Dataset:
    """The images of `labels` (`asset_id`, `label`) as tensors, one epoch, Ray Data.

    One task per Parquet file of the pinned `assets` version reads and decodes it
    (`inputs.read_decode`: augmented with `ops` seeded by `config.seed` and `epoch`,
    resized). With `ops` (training) the files come in an order drawn per epoch from the
    seed when the dataset is planned, so no stage waits for the whole epoch to reorder.
    """
    files = lake.files(ASSETS.name, assets_version)
    if ops:
        random.Random(config.seed + epoch).shuffle(files)
    items = ray.data.from_items([{"path": f} for f in files], override_num_blocks=len(files) or 1)
    kwargs = {"location": lake.location, "labels": labels, "image_size": config.image_size,
              "ops": ops, "seed": config.seed, "epoch": epoch}  # fmt: skip
    return items.map_batches(read_decode, batch_size=1, batch_format="numpy", fn_kwargs=kwargs)  # type: ignore[arg-type]


def _stopped(model_id: str, cause: BaseException) -> TrainingStopped:
    """The error of a run that stopped: it names the command that continues it."""
    return TrainingStopped(
        f"training of model {model_id} stopped ({cause}); its checkpoints are kept: "
        f"continue it with `smartray train --resume {model_id}`"
    )


def _write_run_file(
    lk: Lake, model_id: str, config: TrainConfig, versions: dict[str, int | None]
) -> None:
    """Records a run's settings and pinned versions beside its checkpoints (for --resume)."""
    fs, root = lk.location.filesystem()
    folder = f"{root}/checkpoints/{model_id}"
    if lk.location.is_local:
        fs.create_dir(folder, recursive=True)
    body = {"config": config.model_dump(mode="json"), "versions": versions}
    with fs.open_output_stream(f"{folder}/{RUN_FILE}") as f:
        f.write(json.dumps(body, sort_keys=True).encode())


def _stopped_run(lk: Lake, model_id: str) -> tuple[TrainConfig, dict[str, int | None]]:
    """The settings and pinned versions of the stopped run `model_id`.

    Raises:
        ConfigError: no run of that id has checkpoints in this lake, or it finished.
    """
    import pyarrow.fs as pafs

    fs, root = lk.location.filesystem()
    path = f"{root}/checkpoints/{model_id}/{RUN_FILE}"
    if "/" in model_id or fs.get_file_info(path).type != pafs.FileType.File:
        raise ConfigError(f"--resume {model_id!r}: unknown model (no checkpoints in {lk.uri})")
    with fs.open_input_stream(path) as f:
        body = json.loads(f.read())
    if lk.exists(MODELS.name):
        done = lk.table(MODELS.name, columns=["model_id"])["model_id"].to_pylist()
        if model_id in done:
            raise ConfigError(f"--resume {model_id!r}: that model finished; train a new one")
    return TrainConfig(**{**body["config"], "resume": model_id}), body["versions"]


def _checkpoints(result: ray.train.Result) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every epoch's checkpoint (epoch, URI in the lake's storage, file sha256s) and metrics.

    Ray Train keeps every reported checkpoint with its metrics, across restarts.
    """
    checkpoints: dict[int, dict[str, Any]] = {}
    history: dict[int, dict[str, Any]] = {}
    for ckpt, metrics in result.best_checkpoints or []:
        epoch = int(metrics["epoch"])
        path = ckpt.path
        uri = path if "://" in path or path.startswith("/") else f"s3://{path}"
        checkpoints[epoch] = {"epoch": epoch, "uri": uri, "sha256": json.loads(metrics["manifest"])}
        history[epoch] = {k: v for k, v in metrics.items() if k != "manifest"}
    return [checkpoints[e] for e in sorted(checkpoints)], [history[e] for e in sorted(history)]
