"""Near-duplicate groups over perceptual hashes (`smartray curate`), and the asset view."""

from typing import TYPE_CHECKING, Any

from smartray.curate.config import CurateConfig
from smartray.curate.view import AssetView, asset_view

if TYPE_CHECKING:
    from smartray.curate.pipeline import curate

__all__ = ["AssetView", "CurateConfig", "asset_view", "curate"]

_LAZY = {"curate": "smartray.curate.pipeline"}


def __getattr__(name: str) -> Any:
    # The pipeline loads Ray: only when asked for.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
