"""A model that kills its Ray Train worker once, mid-epoch: for the resume test.

`--model smartray.testing.train_faults:dies_once` builds a `SmallCNN` whose training
forward pass calls `os._exit` at the N-th batch, once: the plan is the JSON file named
by `PLAN` (`{"after_batches": N, "marker": PATH}`); the marker file records that it died.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from smartray.train.nets import SmallCNN

PLAN = Path(tempfile.gettempdir()) / "smartray-train-dies-once.json"


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
    if not PLAN.exists():
        return SmallCNN(num_classes)
    plan = json.loads(PLAN.read_text())
    return _DiesOnce(num_classes, int(plan["after_batches"]), str(plan["marker"]))
