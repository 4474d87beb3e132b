"""Training image classifiers on Ray Train (`smartray train`).

`train` (the Ray pipeline) is imported on first use, so the models, checkpoints and
input selection stay importable without starting anything.
"""

from typing import TYPE_CHECKING, Any

from smartray.train.checkpoint import CheckpointError
from smartray.train.config import TrainConfig
from smartray.train.nets import BUILTIN, build, embed

if TYPE_CHECKING:
    from smartray.train.pipeline import TrainSummary, train

__all__ = ["BUILTIN", "CheckpointError", "TrainConfig", "TrainSummary", "build", "embed", "train"]

_LAZY = {"train": "smartray.train.pipeline", "TrainSummary": "smartray.train.pipeline"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
