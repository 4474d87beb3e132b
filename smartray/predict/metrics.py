"""Classification metrics overall and per slice, from maintained libraries. Ray-free.

Accuracy, per-class precision / recall / F1, macro F1 and the confusion matrix come from
scikit-learn; the expected calibration error (15 equal-width confidence bins, L1) from
torchmetrics; the Wilson interval, Fisher's exact test and the Benjamini-Hochberg
adjustment from SciPy.

A slice is the rows sharing one value of a column (numeric columns with many values:
one of four quantile buckets). It is **flagged** when it is significantly worse than the
rest: a one-sided Fisher exact test of its accuracy against the other rows, its p-value
adjusted (Benjamini-Hochberg) over every slice of the evaluation, below 0.05. So a
slice of 3 with one miss does not shout, and a large slice 5 points down does.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pyarrow as pa

ALPHA = 0.05  # adjusted p-value under which a slice is flagged
ECE_BINS = 15
MAX_SLICES = 50  # values of one column kept as slices; the rarest are pooled as "(other)"
BUCKETS = 4  # quantile buckets of a numeric column with more than MAX_DISTINCT values
MAX_DISTINCT = 8
NONE, OTHER = "(none)", "(other)"


def wilson(correct: int, n: int) -> tuple[float, float]:
    """The Wilson 95 % interval of a proportion `correct / n` ((0, 1) for n = 0)."""
    from scipy.stats import binomtest

    if n == 0:
        return 0.0, 1.0
    ci = binomtest(correct, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def scores(
    y_true: np.ndarray, y_pred: np.ndarray, probs: np.ndarray, classes: list[dict[str, Any]]
) -> dict[str, Any]:
    """Accuracy, its Wilson interval, macro F1, per-class scores, confusion matrix, ECE."""
    import torch
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support
    from torchmetrics.functional.classification import multiclass_calibration_error

    labels = list(range(len(classes)))
    n, correct = len(y_true), int((y_true == y_pred).sum())
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    per_class = [
        {"class_id": c["class_id"], "name": c["name"], "precision": round(float(p), 6),
         "recall": round(float(r), 6), "f1": round(float(f), 6), "support": int(s)}
        for c, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
    ]  # fmt: skip
    ece = multiclass_calibration_error(
        torch.tensor(probs, dtype=torch.float32),
        torch.tensor(y_true, dtype=torch.long),
        num_classes=len(classes),
        n_bins=ECE_BINS,
        norm="l1",
    )
    low, high = wilson(correct, n)
    return {
        "n": n,
        "correct": correct,
        "accuracy": correct / n if n else 0.0,
        "ci_low": low,
        "ci_high": high,
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
        "ece": float(ece),
        "per_class": json.dumps(per_class),
        "confusion": json.dumps(confusion_matrix(y_true, y_pred, labels=labels).tolist()),
    }


def slice_values(column: pa.ChunkedArray | pa.Array) -> list[str]:
    """Each row's slice of `column`: its value, or its quantile bucket (`[lo, hi)`).

    Numbers with more than `MAX_DISTINCT` values fall into `BUCKETS` quantile buckets;
    booleans read `true` / `false`; nulls `(none)`; of more than `MAX_SLICES` values
    the rarest are pooled as `(other)`.
    """
    values = column.to_pylist()
    numeric = pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
    present = [v for v in values if v is not None and v == v]
    if numeric and len(set(present)) > MAX_DISTINCT:
        edges = np.unique(np.quantile(np.asarray(present, np.float64),
                                      np.linspace(0, 1, BUCKETS + 1)))  # fmt: skip
        names = [
            f"[{_num(lo)}, {_num(hi)}{']' if i == len(edges) - 2 else ')'}"
            for i, (lo, hi) in enumerate(itertools.pairwise(edges))
        ]
        where = np.clip(np.searchsorted(edges, present, side="right") - 1, 0, len(names) - 1)
        it = iter(names[i] for i in where)
        return [NONE if v is None or v != v else next(it) for v in values]
    out = [NONE if v is None else ("true" if v else "false") if isinstance(v, bool) else str(v)
           for v in values]  # fmt: skip
    counts: dict[str, int] = {}
    for v in out:
        counts[v] = counts.get(v, 0) + 1
    if len(counts) > MAX_SLICES:
        kept = set(sorted(counts, key=lambda k: (-counts[k], k))[: MAX_SLICES - 1])
        out = [v if v in kept else OTHER for v in out]
    return out


def _num(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def evaluate_slices(
    rows: pa.Table, slice_by: list[str], classes: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Scores of `rows` overall (`slice_by` = `slice` = `all`) and per slice of each column.

    `rows` holds `y_true`, `y_pred` (class indices), `probabilities` (lists in index
    order) and the `slice_by` columns. Slices carry `p_value`, `p_adjusted`, `flagged`.
    """
    from scipy.stats import false_discovery_control, fisher_exact

    y_true = np.asarray(rows["y_true"].to_numpy(), np.int64)
    y_pred = np.asarray(rows["y_pred"].to_numpy(), np.int64)
    probs = np.asarray(rows["probabilities"].to_pylist(), np.float32).reshape(len(y_true), -1)
    hit = y_true == y_pred
    total, total_correct = len(hit), int(hit.sum())
    out = [{"slice_by": "all", "slice": "all", "p_value": None, "p_adjusted": None,
            "flagged": False, **scores(y_true, y_pred, probs, classes)}]  # fmt: skip
    sliced: list[dict[str, Any]] = []
    for name in slice_by:
        values = np.asarray(slice_values(rows[name]), dtype=object)
        for value in sorted(set(values.tolist())):
            mask = values == value
            n, k = int(mask.sum()), int(hit[mask].sum())
            rest_n, rest_k = total - n, total_correct - k
            p = 1.0
            if rest_n:
                table = [[k, n - k], [rest_k, rest_n - rest_k]]
                p = float(fisher_exact(table, alternative="less").pvalue)
            sliced.append({"slice_by": name, "slice": value, "p_value": p,
                           **scores(y_true[mask], y_pred[mask], probs[mask], classes)})  # fmt: skip
    if sliced:
        adjusted = false_discovery_control([s["p_value"] for s in sliced], method="bh")
        for s, q in zip(sliced, adjusted, strict=True):
            s["p_adjusted"] = float(q)
            s["flagged"] = bool(q < ALPHA)
    return out + sliced


def worst_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The slices (not the overall row), flagged ones first, then by accuracy, then size."""
    slices = [r for r in rows if r["slice_by"] != "all"]
    return sorted(slices, key=lambda r: (not r["flagged"], r["accuracy"], -r["n"]))
