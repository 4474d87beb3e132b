"""The active-learning loop: whole rounds, each recorded in `al_rounds`.

`smartray loop` takes the labels that came back, trains, evaluates, scores the pool,
selects the next batch, exports it and writes the report. The Ray and lake parts load on first use.
"""

from typing import TYPE_CHECKING, Any

from smartray.loop.config import APPROVE, ORACLE, LoopConfig

if TYPE_CHECKING:
    from smartray.loop.pipeline import loop, replay, round_line, run_round

__all__ = ["APPROVE", "ORACLE", "LoopConfig", "loop", "replay", "round_line", "run_round"]

_LAZY = dict.fromkeys(("loop", "replay", "round_line", "run_round"), "smartray.loop.pipeline")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
