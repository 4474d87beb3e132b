"""Augmented children of a snapshot's assets (`smartray augment`)."""

from typing import TYPE_CHECKING, Any

from smartray.augment.config import COPIES, PARENTS_PER_TASK, SEED
from smartray.augment.ops import OPS, child_id, parse_ops

if TYPE_CHECKING:
    from smartray.augment.pipeline import augment_snapshot

__all__ = [
    "COPIES",
    "OPS",
    "PARENTS_PER_TASK",
    "SEED",
    "augment_snapshot",
    "child_id",
    "parse_ops",
]

_LAZY = {"augment_snapshot": "smartray.augment.pipeline"}


def __getattr__(name: str) -> Any:
    # The pipeline loads Ray: only when asked for, so ops stay Ray-free.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
