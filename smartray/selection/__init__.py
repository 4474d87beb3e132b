"""Active-learning selection: score an experiment's pool, pick the next batch.

`smartray score` runs `predict` on the pool (with Monte-Carlo dropout for BALD);
`smartray select` picks `budget` assets by a strategy into `batches`
(`smartray export --batch EXPERIMENT:ROUND` sends them out with the model's guesses).
The maths are in `maths.py` (no Ray, no lake); the Ray and lake parts load on first use.
"""

from typing import TYPE_CHECKING, Any

from smartray.selection.config import (
    COLD_START,
    OBJECTIVES,
    PREFILTER_BY,
    STRATEGIES,
    ScoreConfig,
    SelectConfig,
    parse_weights,
)

if TYPE_CHECKING:
    from smartray.selection.pipeline import score, select

__all__ = [
    "COLD_START",
    "OBJECTIVES",
    "PREFILTER_BY",
    "STRATEGIES",
    "ScoreConfig",
    "SelectConfig",
    "parse_weights",
    "score",
    "select",
]

_LAZY = {"score": "smartray.selection.pipeline", "select": "smartray.selection.pipeline"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
