"""Predictions and evaluation: a recorded model points back at the data.

`smartray predict` fills `predictions` (what evaluation, label issues and selection
read); `smartray evaluate` scores a model per slice into `evaluations`;
`smartray find-label-issues` ranks suspected label errors into `label_issues`. Every name
is imported on first use: `smartray.predict.scorer` (the model call and the uncertainty
statistics) loads with torch and numpy alone, as the GPU benchmark needs.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smartray.predict.config import EvaluateConfig, LabelIssuesConfig, PredictConfig
    from smartray.predict.evaluation import evaluate
    from smartray.predict.flags import ScoringFlags
    from smartray.predict.label_issues import find_label_issues
    from smartray.predict.pipeline import predict

__all__ = [
    "EvaluateConfig",
    "LabelIssuesConfig",
    "PredictConfig",
    "ScoringFlags",
    "evaluate",
    "find_label_issues",
    "predict",
]

_LAZY = {
    "EvaluateConfig": "smartray.predict.config",
    "LabelIssuesConfig": "smartray.predict.config",
    "PredictConfig": "smartray.predict.config",
    "ScoringFlags": "smartray.predict.flags",
    "predict": "smartray.predict.pipeline",
    "evaluate": "smartray.predict.evaluation",
    "find_label_issues": "smartray.predict.label_issues",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
