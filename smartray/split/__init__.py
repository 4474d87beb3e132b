"""Leak-free splits: whole near-duplicate groups and videos per split (`smartray split`)."""

from typing import TYPE_CHECKING, Any

from smartray.split.assign import TOLERANCE, assign_groups, parse_ratios, unit_hash

if TYPE_CHECKING:
    from smartray.split.pipeline import check_leaks, split

__all__ = ["TOLERANCE", "assign_groups", "check_leaks", "parse_ratios", "split", "unit_hash"]

_LAZY = {"check_leaks": "smartray.split.pipeline", "split": "smartray.split.pipeline"}


def __getattr__(name: str) -> Any:
    # The pipeline reads the lake (pyarrow, deltalake): only when asked for.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
