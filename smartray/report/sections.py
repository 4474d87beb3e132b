"""What each section of the report shows, made from table rows (no lake, no HTML).

Each function takes the rows the pipeline read (Arrow tables, only the columns named in
`COLUMNS`) and returns plain dataclasses the page and the plots draw.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

# The columns each section reads of its table (never the image bytes of `assets`).
COLUMNS: dict[str, list[str]] = {
    "batches": ["experiment", "round", "asset_id", "rank", "strategy", "score", "model_id",
                "predicted_class", "confidence", "pool_size", "selected_at"],
    "al_rounds": ["experiment", "round", "strategy", "model_id", "labelled", "val_accuracy",
                  "test_accuracy"],
    "models": ["model_id", "experiment", "trained_at"],
    "evaluations": ["run_id", "model_id", "split_name", "side", "slice_by", "slice", "n",
                    "accuracy", "ci_low", "ci_high", "p_adjusted", "flagged", "evaluated_at"],
    "label_issues": ["run_id", "asset_id", "given_class", "suggested_class",
                     "self_confidence"],
    "quality": ["asset_id", "blur", "brightness", "contrast"],
}  # fmt: skip
QUALITY = ("blur", "brightness", "contrast")
WORST_SLICES = 8


@dataclass(frozen=True)
class Card:
    """One picked asset of a batch, as its card shows it."""

    asset_id: str
    rank: int
    score: float | None
    predicted_class: str | None  # None: no model (cold start)
    confidence: float | None
    thumbnail: bytes | None = None  # None: not in `assets` (erased)


@dataclass(frozen=True)
class Batch:
    """An experiment's latest round of `batches`, its cards in rank order."""

    experiment: str
    round: int
    strategy: str
    model_id: str | None
    pool_size: int
    selected_at: dt.datetime
    cards: list[Card]


@dataclass(frozen=True)
class Issue:
    """A suspected label error awaiting review."""

    asset_id: str
    rank: int
    given_class: str
    suggested_class: str
    self_confidence: float
    thumbnail: bytes | None = None


@dataclass(frozen=True)
class SliceRow:
    """One row of an evaluation: a slice (or `all`) and its accuracy."""

    slice_by: str
    slice: str
    n: int
    accuracy: float
    ci_low: float
    ci_high: float
    p_adjusted: float | None
    flagged: bool


@dataclass(frozen=True)
class Evaluation:
    """The latest evaluation run of a model: overall, and its worst slices."""

    model_id: str
    run_id: str
    split_name: str
    side: str
    evaluated_at: dt.datetime
    overall: SliceRow | None
    worst: list[SliceRow]  # by accuracy, lowest first
    slices: int  # every slice of the run, the overall row left out


@dataclass(frozen=True)
class Curve:
    """An experiment's learning curve: accuracy against labelled assets, round by round.

    Rounds without a model (cold start) or without any accuracy are left out.
    """

    experiment: str
    strategy: str  # of the latest round
    rounds: list[int] = field(default_factory=list)
    labelled: list[int] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    metric: list[str] = field(default_factory=list)  # "test" or "val", per point
    total_rounds: int = 0  # every round recorded, cold start included

    @property
    def label(self) -> str:
        """The legend: `EXPERIMENT (STRATEGY)`."""
        return f"{self.experiment} ({self.strategy})"


def _of(rows: pa.Table, column: str, value: str) -> pa.Table:
    return rows.filter(pc.equal(rows[column].cast(pa.string()), value))


def latest_batch(rows: pa.Table, experiment: str) -> Batch | None:
    """The experiment's highest round of `batches`, by rank; None if it has none."""
    mine = _of(rows, "experiment", experiment)
    if not mine.num_rows:
        return None
    top = pc.max(mine["round"]).as_py()
    picked = mine.filter(pc.equal(mine["round"], top)).sort_by("rank").to_pylist()
    first = picked[0]
    cards = [
        Card(r["asset_id"], r["rank"], r["score"], r["predicted_class"], r["confidence"])
        for r in picked
    ]
    return Batch(
        experiment=experiment,
        round=top,
        strategy=first["strategy"],
        model_id=first["model_id"],
        pool_size=first["pool_size"],
        selected_at=first["selected_at"],
        cards=cards,
    )


def latest_model(models: pa.Table, experiment: str) -> str | None:
    """The experiment's newest model (by `trained_at`), or None."""
    mine = _of(models, "experiment", experiment).to_pylist()
    if not mine:
        return None
    return str(max(mine, key=lambda r: (r["trained_at"], r["model_id"]))["model_id"])


def latest_evaluation(rows: pa.Table, model_id: str, top: int = WORST_SLICES) -> Evaluation | None:
    """The model's latest evaluation run (by `evaluated_at`): overall and worst `top` slices."""
    mine = _of(rows, "model_id", model_id)
    if not mine.num_rows:
        return None
    last = mine.sort_by([("evaluated_at", "descending"), ("run_id", "descending")]).slice(0, 1)
    run = last.to_pylist()[0]
    slices = [
        SliceRow(r["slice_by"], r["slice"], r["n"], r["accuracy"], r["ci_low"], r["ci_high"],
                 r["p_adjusted"], bool(r["flagged"]))
        for r in _of(mine, "run_id", run["run_id"]).to_pylist()
    ]  # fmt: skip
    overall = next((s for s in slices if s.slice_by == "all"), None)
    others = sorted(
        (s for s in slices if s.slice_by != "all"), key=lambda s: (s.accuracy, -s.n, s.slice)
    )
    return Evaluation(
        model_id=model_id,
        run_id=run["run_id"],
        split_name=run["split_name"],
        side=run["side"],
        evaluated_at=run["evaluated_at"],
        overall=overall,
        worst=others[:top],
        slices=len(others),
    )


def learning_curves(rows: pa.Table, experiments: Sequence[str]) -> list[Curve]:
    """One curve per experiment with rounds in `al_rounds`, in the order given.

    x: `labelled`; y: `test_accuracy` where not null, else `val_accuracy`. Rounds with a
    null model (cold start) or no accuracy at all have no point.
    """
    curves = []
    for experiment in experiments:
        mine = _of(rows, "experiment", experiment).sort_by("round").to_pylist()
        if not mine:
            continue
        curve = Curve(experiment, mine[-1]["strategy"], total_rounds=len(mine))
        for r in mine:
            test, val = r["test_accuracy"], r["val_accuracy"]
            if r["model_id"] is None or (test is None and val is None):
                continue
            curve.rounds.append(r["round"])
            curve.labelled.append(r["labelled"])
            curve.accuracy.append(test if test is not None else val)
            curve.metric.append("test" if test is not None else "val")
        curves.append(curve)
    return curves
