"""The training loop each Ray Train worker runs (`TorchTrainer(train_loop_per_worker=...)`).

Batches come from `ray.train.get_dataset_shard(...).iter_torch_batches()`: one dataset
per epoch (`train-<epoch>`, its augmentation seeded by that epoch) and `val`. Rank 0
writes a checkpoint every epoch (`checkpoint.py`) and reports it, and every worker waits
until Ray Train has registered that report before the next epoch; after a lost worker Ray
Train restarts the group and the loop resumes from the last checkpoint at the next epoch,
optimizer and random state restored.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from typing import Any

import ray.train
import ray.train.torch
import torch
from torch import nn

from smartray.train import checkpoint, nets
from smartray.train.inputs import normalize

log = logging.getLogger(__name__)

SHUFFLE_BUFFER = 2048  # rows mixed in the worker, on top of a per-epoch block order


def _evaluate(model: nn.Module, batches: Any, device: torch.device, amp: bool) -> dict[str, float]:
    """Loss and accuracy over `batches`, summed over every worker."""
    model.eval()
    totals = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, count
    with torch.no_grad():
        for batch in batches:
            x, y = normalize(batch["image"].to(device)), batch["label"].to(device)
            with torch.autocast(device.type, enabled=amp):
                logits = model(x)
            totals[0] += nn.functional.cross_entropy(logits.float(), y, reduction="sum")
            totals[1] += (logits.argmax(1) == y).sum()
            totals[2] += y.numel()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(totals)
    loss, correct, count = totals.tolist()
    return {"loss": loss / max(count, 1), "accuracy": correct / max(count, 1), "count": count}


def train_loop(config: dict[str, Any]) -> None:
    """One worker's training: resume if a checkpoint exists, then epoch by epoch."""
    torch.manual_seed(config["seed"])
    torch.set_num_threads(max(1, int(config["cpus_per_worker"])))
    device = ray.train.torch.get_device()
    amp = device.type == "cuda"
    timeout = config.get("model_timeout_s", nets.FACTORY_TIMEOUT_S)
    model = nets.build(config["model"], len(config["classes"]), timeout_s=timeout)
    if config.get("init_weights"):
        checkpoint.apply_weights(model, checkpoint.read_weights(config["init_weights"]))
    if config.get("init_state") is not None:  # --init-model: checked on the driver
        checkpoint.apply_weights(model, ray.get(config["init_state"]))
    opt = torch.optim.AdamW(
        model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"]
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, config["epochs"]))
    history: list[dict[str, Any]] = []
    start = 0
    resumed = ray.train.get_checkpoint()
    if resumed is not None:
        with resumed.as_directory() as folder:
            saved = checkpoint.load(folder, _reported_manifest(resumed))
        model.load_state_dict(saved.model)
        opt.load_state_dict(saved.optimizer)
        sched.load_state_dict(saved.state["scheduler"])
        history = saved.state["history"]
        start = saved.epoch + 1
        log.warning("resuming from the checkpoint of epoch %d", saved.epoch)
    model = ray.train.torch.prepare_model(model)
    weights = torch.tensor(config["class_weights"], dtype=torch.float32, device=device)
    loss_fn = nn.CrossEntropyLoss(weight=weights if config["class_weights"] else None)
    scaler = torch.amp.GradScaler(enabled=amp)
    rank = ray.train.get_context().get_world_rank()
    best = max((h["val_accuracy"] for h in history), default=-1.0)
    stale = sum(1 for _ in _since_best(history))
    for epoch in range(start, config["epochs"]):
        t0 = time.perf_counter()
        model.train()
        seen = correct = 0
        loss_sum = 0.0
        shard = ray.train.get_dataset_shard(f"train-{epoch}")
        batches = shard.iter_torch_batches(
            batch_size=config["batch_size"],
            device=device,
            local_shuffle_buffer_size=SHUFFLE_BUFFER,
            local_shuffle_seed=config["seed"] + epoch,
        )
        for batch in batches:
            x, y = normalize(batch["image"]), batch["label"]
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device.type, enabled=amp):
                logits = model(x)
                loss = loss_fn(logits.float(), y)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            seen += y.numel()
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += float(loss) * y.numel()
        sched.step()
        val = _evaluate(
            model,
            ray.train.get_dataset_shard("val").iter_torch_batches(
                batch_size=config["batch_size"], device=device
            ),
            device,
            amp,
        )
        row = {
            "epoch": epoch,
            "train_loss": loss_sum / max(seen, 1),
            "train_accuracy": correct / max(seen, 1),
            "val_loss": val["loss"],
            "val_accuracy": val["accuracy"],
            "seconds": round(time.perf_counter() - t0, 3),
            "optimizer_steps": _steps(opt),  # continues across a resume: state restored
            "resumed": resumed is not None and epoch == start,
        }
        history.append(row)
        stale = 0 if row["val_accuracy"] > best else stale + 1
        best = max(best, row["val_accuracy"])
        metrics: dict[str, Any] = dict(row)
        with tempfile.TemporaryDirectory() as folder:
            ckpt = None
            if rank == 0:
                state = {"scheduler": sched.state_dict(), "history": history}
                manifest = checkpoint.save(folder, model=model, optimizer=opt, epoch=epoch,
                                           state=state)  # fmt: skip
                metrics["manifest"] = json.dumps(manifest, sort_keys=True)
                ckpt = ray.train.Checkpoint.from_directory(folder)
            ray.train.report(metrics, checkpoint=ckpt)
        # report() returns once the checkpoint is uploaded, but Ray Train's controller
        # takes it from this worker only at its next poll (every ~2 s): a worker lost
        # before that loses the report, and the restart resumes an epoch earlier. Wait
        # until the controller has registered it, so a reported epoch is never redone.
        ray.train.get_all_reported_checkpoints(
            consistency_mode=ray.train.CheckpointConsistencyMode.COMMITTED
        )
        patience = config.get("early_stop_patience")
        if patience and stale >= patience:
            break


def _reported_manifest(resumed: ray.train.Checkpoint) -> dict[str, str]:
    """The sha256 of each file of `resumed`, as reported with it.

    Ray Train's controller holds it, not the folder: a folder rewritten together with its
    own manifest is refused too.

    Raises:
        CheckpointError: `resumed` is not among the reported checkpoints, or was reported
            without its manifest.
    """
    consistency = ray.train.CheckpointConsistencyMode.COMMITTED
    for reported in ray.train.get_all_reported_checkpoints(consistency_mode=consistency):
        if reported.checkpoint.path == resumed.path and "manifest" in reported.metrics:
            manifest: dict[str, str] = json.loads(reported.metrics["manifest"])
            return manifest
    raise checkpoint.CheckpointError(
        f"checkpoint {resumed.path}: not among the run's reported checkpoints with a manifest"
    )


def _steps(opt: torch.optim.Optimizer) -> int:
    """The optimizer's step count (AdamW keeps one per parameter)."""
    states = [v for v in opt.state.values() if "step" in v]
    return int(states[0]["step"]) if states else 0


def _since_best(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The epochs after the best one so far (for early stopping across a resume)."""
    if not history:
        return []
    best = max(range(len(history)), key=lambda i: history[i]["val_accuracy"])
    return history[best + 1 :]
