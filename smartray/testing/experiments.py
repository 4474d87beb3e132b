"""A small lake of active-learning experiments, written without Ray, for the report's tests.

Real pictures: scikit-learn's handwritten digits, upscaled and JPEG-encoded as the
assets' thumbnails, so every thumbnail decodes. The other tables (`models`, `batches`,
`al_rounds`, `evaluations`, `label_issues`) hold made-up but consistent rows: each
experiment's round 1 is a cold start (no model), later rounds have a model, a score and
an accuracy; the latest batch is committed out of rank order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from smartray.sanitize.cv import cv2
from smartray.tables import ASSETS, Lake, TableSpec
from smartray.tables.catalog import AL_ROUNDS, BATCHES, EVALUATIONS, LABEL_ISSUES, MODELS
from smartray.testing import rows

OPTIONAL = ("models", "al_rounds", "evaluations", "label_issues")
_T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass
class ExperimentLake:
    """What `experiment_lake` wrote, for tests to check a report against.

    Attributes:
        root: The lake root.
        strategies: Experiment -> the strategy of its later rounds.
        batch: Experiment -> the asset ids of its latest batch, in rank order.
        scores: Experiment -> those assets' scores, in rank order.
        thumbnails: Asset id -> its JPEG thumbnail.
        curves: Experiment -> the (labelled, accuracy) points its learning curve has.
        issues: Asset ids of the latest find-label-issues run, by rank.
        model: Experiment -> its newest model.
    """

    root: str
    strategies: dict[str, str]
    batch: dict[str, list[str]] = field(default_factory=dict)
    scores: dict[str, list[float]] = field(default_factory=dict)
    thumbnails: dict[str, bytes] = field(default_factory=dict)
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    issues: list[str] = field(default_factory=list)
    model: dict[str, str] = field(default_factory=dict)


def _id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _table(spec: TableSpec, records: list[dict[str, Any]]) -> pa.Table:
    """Valid rows of `spec`, each made from `rows`' defaults and the record's values."""
    base = rows(spec, len(records)).to_pylist()
    return spec.cast([{**b, **r} for b, r in zip(base, records, strict=True)])


def _assets(n: int) -> tuple[pa.Table, dict[str, bytes]]:
    from sklearn.datasets import load_digits

    images = load_digits().images[:n]
    records, thumbs = [], {}
    for img in images:
        gray8 = (img * (255 / 16)).astype(np.uint8)
        px = cv2.resize(gray8, (64, 64), interpolation=cv2.INTER_NEAREST)
        ok, buf = cv2.imencode(".jpg", px, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        jpeg = bytes(buf.tobytes())
        asset_id = hashlib.sha256(jpeg).hexdigest()
        thumbs[asset_id] = jpeg
        gray = px.astype(np.float64) / 255
        records.append({
            "asset_id": asset_id, "media_type": "image", "format": "jpeg",
            "source_format": "jpeg", "width": 64, "height": 64, "channels": 1, "aspect": 1.0,
            "blur": float(cv2.Laplacian(px, cv2.CV_64F).var()),
            "brightness": float(gray.mean()), "contrast": float(gray.std()),
            "is_grayscale": True, "data": jpeg, "thumbnail": jpeg,
            "captured_at": None, "descriptor": None, "blurred_boxes": None,
        })  # fmt: skip
    return _table(ASSETS, records), thumbs


def experiment_lake(
    root: str,
    experiments: Sequence[tuple[str, str]] = (("exp-margin", "margin"), ("exp-random", "random")),
    *,
    assets: int = 40,
    budget: int = 6,
    rounds: int = 3,
    tables: Collection[str] = OPTIONAL,
) -> ExperimentLake:
    """Writes assets and each experiment's `rounds` batches, and the `tables` of `OPTIONAL`.

    Args:
        root: The lake root.
        experiments: (name, strategy) pairs.
        assets: Digits to ingest as assets.
        budget: Assets per batch.
        rounds: Rounds per experiment (round 1: cold start).
        tables: Which of `OPTIONAL` to write (leave one out: a lake that never ran it).
    """
    lake = Lake(root)
    asset_rows, thumbs = _assets(assets)
    ids = list(thumbs)
    out = ExperimentLake(root, dict(experiments), thumbnails=thumbs)
    written: dict[TableSpec, list[dict[str, Any]]] = {
        spec: [] for spec in (BATCHES, MODELS, AL_ROUNDS, EVALUATIONS, LABEL_ISSUES)
    }
    rng = np.random.default_rng(0)
    for e, (name, strategy) in enumerate(experiments):
        picks = [str(a) for a in rng.permutation(ids)[: budget * rounds]]
        for r in range(1, rounds + 1):
            cold = r == 1
            model = None if cold else _id(f"{name}:model:{r}")
            batch = picks[(r - 1) * budget : r * budget]
            scores = sorted(rng.random(budget).round(4).tolist(), reverse=True)
            for rank in rng.permutation(budget).tolist():  # committed out of rank order
                written[BATCHES].append({
                    "experiment": name, "round": r, "asset_id": batch[rank], "rank": rank,
                    "strategy": "random" if cold else strategy,
                    "score": None if cold else scores[rank], "model_id": model,
                    "predicted_class": None if cold else _NAMES[rank % 10],
                    "predicted_class_id": None if cold else rank % 10,
                    "confidence": None if cold else 0.5 + rank / (4 * budget),
                    "budget": budget, "pool_size": assets - (r - 1) * budget,
                    "selected_at": _T0 + dt.timedelta(days=r, minutes=e),
                })  # fmt: skip
            out.batch[name], out.scores[name] = batch, ([] if cold else scores)
            labelled = (r - 1) * budget
            # the last round has no test side measured: its point is the val accuracy
            test = None if cold or r == rounds else 0.4 + 0.1 * r + 0.05 * e
            val = None if cold else 0.35 + 0.1 * r + 0.05 * e
            written[AL_ROUNDS].append({
                "experiment": name, "round": r, "strategy": "random" if cold else strategy,
                "model_id": model, "labelled": labelled, "val_accuracy": val,
                "test_accuracy": test, "selected_ids": batch,
                "finished_at": _T0 + dt.timedelta(days=r, minutes=e),
            })  # fmt: skip
            if model is not None:
                point = test if test is not None else val
                assert point is not None
                out.curves.setdefault(name, []).append((labelled, point))
                out.model[name] = model
                written[MODELS].append({
                    "model_id": model, "experiment": name,
                    "trained_at": _T0 + dt.timedelta(days=r, minutes=e - 30),
                })  # fmt: skip
    for name, model in out.model.items():
        for when, run in ((1, "old"), (2, "new")):  # the report shows the newer run
            run_id = _id(f"{name}:eval:{run}")
            for k, (by, value) in enumerate([("all", "all")] + [
                ("source_folder", f"folder-{j}") for j in range(10)
            ]):  # fmt: skip
                n, acc = 20 + k, 0.95 - 0.07 * ((k * 7) % 11) / (when + 1)
                written[EVALUATIONS].append({
                    "run_id": run_id, "model_id": model, "split_name": "main", "side": "val",
                    "slice_by": by, "slice": value, "n": n, "correct": round(n * acc),
                    "accuracy": acc, "ci_low": max(0.0, acc - 0.1),
                    "ci_high": min(1.0, acc + 0.1), "p_adjusted": 0.5 / (k + 1),
                    "flagged": acc < 0.75, "evaluated_at": _T0 + dt.timedelta(days=10 + when),
                })  # fmt: skip
    for when in (1, 2):  # the report shows the newer run
        flagged = ids[when : when + 5]
        for rank, asset_id in enumerate(flagged):
            written[LABEL_ISSUES].append({
                "run_id": _id(f"issues:{when}"), "asset_id": asset_id, "rank": rank,
                "given_class": _NAMES[rank], "suggested_class": _NAMES[(rank + 3) % 10],
                "self_confidence": 0.05 * (rank + 1), "found_at": _T0 + dt.timedelta(days=when),
            })  # fmt: skip
        out.issues = flagged
    with lake.session("test", {}) as s:
        s.commit(ASSETS, asset_rows)
        s.commit(BATCHES, _table(BATCHES, written[BATCHES]))
        for spec in (MODELS, AL_ROUNDS, EVALUATIONS, LABEL_ISSUES):
            if spec.name in tables and written[spec]:
                s.commit(spec, _table(spec, written[spec]))
    return out
