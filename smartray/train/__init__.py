"""Training image classifiers on Ray Train (`smartray train`).

Every name here is imported on first use: `smartray.train.nets` and
`smartray.train.inputs` (models, decode) then load without Ray, deltalake or pydantic,
which is what `bench/gpu_train.py` has on a GPU machine.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smartray.train.checkpoint import CheckpointError
    from smartray.train.config import TrainConfig
    from smartray.train.nets import BUILTIN, build, embed
    from smartray.train.pipeline import TrainSummary, train

__all__ = ["BUILTIN", "CheckpointError", "TrainConfig", "TrainSummary", "build", "embed", "train"]

_LAZY = {
    "BUILTIN": "smartray.train.nets",
    "CheckpointError": "smartray.train.checkpoint",
    "TrainConfig": "smartray.train.config",
    "TrainSummary": "smartray.train.pipeline",
    "build": "smartray.train.nets",
    "embed": "smartray.train.nets",
    "train": "smartray.train.pipeline",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
