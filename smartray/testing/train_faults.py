"""A model that kills its Ray Train worker once, mid-epoch: for the resume test.

`--model smartray.testing.train_faults:dies_once` builds a `SmallCNN` whose training
forward pass calls `os._exit` at the N-th batch, once: the plan is the JSON file at
`plan_path()` (`{"after_batches": N, "marker": PATH}`), one per Ray cluster, so test runs
on two clusters of one machine do not share it; the marker file records that it died.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch

from smartray.train.nets import SmallCNN


def plan_path() -> Path:
    """The plan file of the Ray cluster this process is connected to."""
    import ray

    cluster = hashlib.sha256(ray.get_runtime_context().gcs_address.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"smartray-train-dies-once-{cluster}.json"


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
