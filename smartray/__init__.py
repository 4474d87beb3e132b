"""smartray: an open, Ray-native data engine for data-centric computer vision."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smartray.version import __version__

if TYPE_CHECKING:
    from smartray.lake import Lake

__all__ = ["Lake", "__version__"]


def __getattr__(name: str) -> Any:
    # `Lake` loads pyarrow and deltalake: only when asked for, so that processes that
    # never touch the lake (the video decoder's child) start fast.
    if name == "Lake":
        from smartray.lake import Lake

        return Lake
    raise AttributeError(f"module 'smartray' has no attribute {name!r}")
