"""The report's plots, drawn by matplotlib as SVG to inline in the page.

Figures are made with `matplotlib.figure.Figure`, never pyplot: no global backend is
chosen or changed (a notebook that writes a report keeps its own), and nothing opens a
window. Text stays text (`svg.fonttype: none`). What makes a saved SVG a file of its own
(the XML prolog, the doctype, the metadata, the namespace URLs) is cut: an `<svg>` inside
HTML is put in the SVG namespace by the HTML parser, and the page then holds no URL.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from html import escape

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from smartray.report.sections import QUALITY, Curve

_CUT = (
    re.compile(r"<\?xml.*?\?>\s*", re.S),
    re.compile(r"<!DOCTYPE.*?>\s*", re.S),
    re.compile(r"<metadata>.*?</metadata>\s*", re.S),
    re.compile(r'\s+xmlns(:\w+)?="[^"]*"'),
)
_AXES = {
    "blur": "blur (variance of the Laplacian, log scale)",
    "brightness": "brightness (mean gray, 0..1)",
    "contrast": "contrast (std of gray, 0..1)",
}
_ALL_COLOUR = "#b8c2cc"
_LOG_FLOOR = 1e-2  # blur values below it are drawn at it (a flat image has 0)


def inline_svg(fig: Figure, name: str) -> str:
    """`fig` as an `<svg>` element to put in HTML: no prolog, metadata or namespace URL.

    Args:
        fig: The figure.
        name: Its accessible name; also salts the SVG's element ids, so two plots on one
            page never share an id.
    """
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": name}):
        fig.savefig(buf, format="svg")  # margins set by the caller: a tight box draws twice
    text = buf.getvalue()
    for pattern in _CUT:
        text = pattern.sub("", text)
    return text.replace("<svg", f'<svg role="img" aria-label="{escape(name)}"', 1).strip()


def learning_curve(curves: Sequence[Curve]) -> str | None:
    """Accuracy against labelled assets, one line per experiment; None when no point."""
    drawn = [c for c in curves if c.labelled]
    if not drawn:
        return None
    fig = Figure(figsize=(7.5, 4.2))
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.13, top=0.97)
    ax = fig.add_subplot()
    for curve in drawn:
        (line,) = ax.plot(curve.labelled, curve.accuracy, marker="o", label=curve.label)
        val = [i for i, m in enumerate(curve.metric) if m == "val"]
        if val:  # hollow markers: validation accuracy, no test side measured
            ax.plot([curve.labelled[i] for i in val], [curve.accuracy[i] for i in val],
                    linestyle="none", marker="o", markerfacecolor="white",
                    markeredgecolor=line.get_color())  # fmt: skip
    ax.set_xlabel("labelled assets")
    ax.set_ylabel("accuracy (test; hollow: val)")
    ax.set_ylim(min(0.0, *(min(c.accuracy) for c in drawn)), 1.0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return inline_svg(fig, "learning curve")


def _edges(values: np.ndarray, log: bool, bins: int = 30) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    if log and hi > lo * 1.001:
        return np.geomspace(lo, hi, bins + 1)
    return np.histogram_bin_edges(values, bins=bins)


def quality_histograms(
    values: Mapping[str, np.ndarray], marks: Mapping[str, Mapping[str, np.ndarray]]
) -> str | None:
    """Histograms of `QUALITY` over every asset, each batch's values marked on them.

    Args:
        values: Metric -> the values of every asset.
        marks: Batch label -> metric -> the values of the batch's assets: drawn as ticks
            along the axis and a dashed line at their median.

    Returns:
        The SVG, or None when there are no assets.
    """
    if not len(values.get(QUALITY[0], ())):
        return None
    fig = Figure(figsize=(11, 3.3))
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.17, top=0.97, wspace=0.25)
    axes = fig.subplots(1, len(QUALITY))
    colours = [f"C{i}" for i in range(len(marks))]
    for ax, metric in zip(axes, QUALITY, strict=True):
        log = metric == "blur"
        every = np.asarray(values[metric], np.float64)
        every = np.maximum(every, _LOG_FLOOR) if log else every
        ax.hist(every, bins=_edges(every, log), color=_ALL_COLOUR, label=f"all ({every.size})")
        for colour, (label, batch) in zip(colours, marks.items(), strict=True):
            got = np.asarray(batch.get(metric, ()), np.float64)
            if not got.size:
                continue
            got = np.maximum(got, _LOG_FLOOR) if log else got
            ax.plot(got, np.full(got.size, 0.03), "|", color=colour, markersize=14,
                    markeredgewidth=1.5, transform=ax.get_xaxis_transform(),
                    label=f"{label} ({got.size})")  # fmt: skip
            ax.axvline(float(np.median(got)), color=colour, linestyle="--", linewidth=1)
        if log:
            ax.set_xscale("log")  # decades only: minor labels overlap on a wide range
        ax.set_xlabel(_AXES[metric])
        ax.set_ylabel("assets")
    axes[0].legend(fontsize="small")
    return inline_svg(fig, "quality histograms")
