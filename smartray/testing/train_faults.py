"""Models that kill their Ray Train worker once: for the resume tests.

`--model smartray.testing.train_faults:dies_once` builds a `SmallCNN` whose training
forward pass calls `os._exit` at the N-th batch, once: the plan is the JSON file at
`plan_path()` (`{"after_batches": N, "marker": PATH}`), one per Ray cluster, so test runs
on two clusters of one machine do not share it; the marker file records that it died.

`--model smartray.testing.train_faults:dies_after_checkpoint` kills its worker right after
the checkpoint of epoch K was reported, once, as the next epoch starts (`model.train()`):
the plan at `plan_path(AFTER_CHECKPOINT)` is `{"epoch": K, "marker": PATH, "how": "exit"
or "sigkill", "tamper": null, "bit" or "with-manifest"}`. With `tamper` the worker first
flips one bit of that checkpoint's `model.safetensors` in storage, as a bad disk or an
attacker would between the kill and the restart (`with-manifest`: and rewrites the folder's
`manifest.json` to match). The marker (JSON) records the pid, the epoch, the checkpoint's
path, the byte flipped and the manifest it replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import tempfile
from pathlib import Path
from typing import Any

import torch

from smartray.train.nets import SmallCNN

DIES_ONCE, AFTER_CHECKPOINT = "dies-once", "dies-after-checkpoint"


def plan_path(fault: str = DIES_ONCE) -> Path:
    """The plan file of `fault` for the Ray cluster this process is connected to."""
    import ray

    cluster = hashlib.sha256(ray.get_runtime_context().gcs_address.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"smartray-train-{fault}-{cluster}.json"


class _DiesOnce(SmallCNN):
    def __init__(self, num_classes: int, after: int, marker: str):
        super().__init__(num_classes)
        self.after, self.marker, self.batches = after, marker, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.batches += 1
            if self.batches >= self.after and not os.path.exists(self.marker):
                Path(self.marker).write_text(str(os.getpid()))
                os._exit(1)  # the worker dies as on a lost node
        return super().forward(x)


def dies_once(num_classes: int) -> torch.nn.Module:
    """The factory; a plain `SmallCNN` when no plan is written."""
    path = plan_path()
    if not path.exists():
        return SmallCNN(num_classes)
    plan = json.loads(path.read_text())
    return _DiesOnce(num_classes, int(plan["after_batches"]), str(plan["marker"]))


class _DiesAfterCheckpoint(SmallCNN):
    def __init__(self, num_classes: int, plan: dict[str, Any]):
        super().__init__(num_classes)
        self.plan, self.epochs_started = plan, 0

    def train(self, mode: bool = True) -> _DiesAfterCheckpoint:
        if mode:  # the loop calls model.train() as each epoch starts
            self.epochs_started += 1
            if self.epochs_started == self.plan["epoch"] + 2 and not os.path.exists(
                self.plan["marker"]
            ):
                self._die()
        return super().train(mode)

    def _die(self) -> None:
        import ray.train

        reported = ray.train.get_checkpoint()  # the one just reported, in storage
        assert reported is not None, "no checkpoint reported before the kill"
        note: dict[str, Any] = {"pid": os.getpid(), "epoch": self.plan["epoch"],
                                "checkpoint": reported.path, "flipped": None}  # fmt: skip
        if self.plan.get("tamper"):
            fs, path = reported.filesystem, f"{reported.path}/model.safetensors"
            with fs.open_input_stream(path) as f:
                body = bytearray(f.read())
            body[-1] ^= 1  # one bit of one weight
            with fs.open_output_stream(path) as f:
                f.write(bytes(body))
            note["flipped"] = len(body) - 1
            if self.plan["tamper"] == "with-manifest":  # the folder's manifest agrees
                manifest_path = f"{reported.path}/manifest.json"
                with fs.open_input_stream(manifest_path) as f:
                    note["manifest"] = f.read().decode()
                manifest = json.loads(note["manifest"])
                manifest["model.safetensors"] = hashlib.sha256(body).hexdigest()
                with fs.open_output_stream(manifest_path) as f:
                    f.write(json.dumps(manifest, sort_keys=True).encode())
        Path(self.plan["marker"]).write_text(json.dumps(note))
        if self.plan.get("how") == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(1)  # the worker dies as on a lost node


def dies_after_checkpoint(num_classes: int) -> torch.nn.Module:
    """The factory; a plain `SmallCNN` when no plan is written."""
    path = plan_path(AFTER_CHECKPOINT)
    if not path.exists():
        return SmallCNN(num_classes)
    return _DiesAfterCheckpoint(num_classes, json.loads(path.read_text()))
