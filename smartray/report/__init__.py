"""The experiment report: `smartray report --experiment NAME --out report.html`.

One self-contained HTML page (thumbnails and plots inline, no URL) showing an
active-learning experiment: its latest batch, the label issues awaiting review, image
quality, the worst slices of its last evaluation, and the learning curve, several
experiments compared on one. `sections.learning_curves` gives the curves' data.
The lake and matplotlib parts load on first use.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smartray.report.pipeline import ReportSummary, build_page, write_report
    from smartray.report.sections import Curve, learning_curves

__all__ = ["Curve", "ReportSummary", "build_page", "learning_curves", "write_report"]

_LAZY = {
    "Curve": "smartray.report.sections",
    "ReportSummary": "smartray.report.pipeline",
    "build_page": "smartray.report.pipeline",
    "learning_curves": "smartray.report.sections",
    "write_report": "smartray.report.pipeline",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
