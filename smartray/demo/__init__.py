"""The demo (`smartray demo`): a small real corpus, ingested, managed and shown.

Loaded when first asked for: `build_corpus` needs OpenCV and `run_demo` Ray.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smartray.demo.corpus import build_corpus
    from smartray.demo.pipeline import run_demo

__all__ = ["build_corpus", "run_demo"]

_HOMES = {"build_corpus": "smartray.demo.corpus", "run_demo": "smartray.demo.pipeline"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'smartray.demo' has no attribute {name!r}")
