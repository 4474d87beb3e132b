"""Named, reproducible samples of the lake (`smartray sample`)."""

from typing import TYPE_CHECKING, Any

from smartray.sample.strategies import STRATEGIES

if TYPE_CHECKING:
    from smartray.sample.snapshots import snapshot_names, take_snapshot

__all__ = ["STRATEGIES", "snapshot_names", "take_snapshot"]

_LAZY = {
    "snapshot_names": "smartray.sample.snapshots",
    "take_snapshot": "smartray.sample.snapshots",
}


def __getattr__(name: str) -> Any:
    # Snapshots read the lake (pyarrow, deltalake): only when asked for.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
