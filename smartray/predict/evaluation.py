"""`smartray evaluate`: a model's metrics on one side of a split, overall and per slice.

1. Pin `assets`, `labels`, `splits`; take the approved image-level class labels of the
   model's ontology on the side (`--on`) of the split. Labels under another version of
   that ontology than the model learnt are refused.
2. Score the labelled assets the model has not predicted yet (`predict_assets`), then
   read their `predictions`.
3. Join what each asset reaches (`SLICE_COLUMNS`: the asset view, duplicate-group size,
   the label's annotator and agreement, its class) and score overall and per slice
   (`metrics.evaluate_slices`).
4. Commit the rows to `evaluations`; the summary prints the worst slices first.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from smartray.curate.view import DERIVED_COLUMNS, asset_view
from smartray.errors import ConfigError
from smartray.predict import metrics
from smartray.predict.config import EvaluateConfig, PredictConfig
from smartray.predict.model import RecordedModel, find_model
from smartray.predict.pipeline import predict_assets
from smartray.tables import ASSETS, SPLITS, Lake, LakeSession, RunSummary
from smartray.tables.catalog import EVALUATIONS, LABELS, PREDICTIONS
from smartray.tables.filters import text

log = logging.getLogger(__name__)

# Columns an evaluation can slice by: the asset view's, and what the label and the
# near-duplicate groups add.
LABEL_SLICE_COLUMNS = ("annotator", "agreement", "class")
SLICE_COLUMNS = tuple(
    c for c in (*ASSETS.light_columns, *DERIVED_COLUMNS, "dup_group_size", *LABEL_SLICE_COLUMNS)
    if c not in ("asset_id",)
)  # fmt: skip
SHOWN = 10  # worst slices in the summary


@dataclass
class EvaluateSummary(RunSummary):
    """What an evaluation found: the overall row and the slices, worst first."""

    model_id: str = ""
    where: str = ""
    overall: dict[str, Any] = field(default_factory=dict)
    worst: list[dict[str, Any]] = field(default_factory=list)

    def line(self) -> str:
        """The summary: the overall scores, then the worst slices, one per line."""
        o = self.overall
        head = (
            f"evaluate {self.run_id}: model {self.model_id} on {self.where}: {o['n']} assets, "
            f"accuracy {100 * o['accuracy']:.2f} % (95 % CI {100 * o['ci_low']:.1f}-"
            f"{100 * o['ci_high']:.1f}), macro F1 {o['macro_f1']:.3f}, ECE {o['ece']:.3f}; "
            f"{self.counts.get('flagged', 0)} slice(s) significantly worse"
        )
        lines = [head]
        if self.worst:
            lines.append("worst slices (flagged: significantly worse than the rest):")
        for s in self.worst:
            mark = "FLAGGED" if s["flagged"] else "       "
            lines.append(
                f"  {mark} {s['slice_by']}={s['slice']}: n {s['n']}, accuracy "
                f"{100 * s['accuracy']:.1f} % ({100 * s['ci_low']:.1f}-{100 * s['ci_high']:.1f}),"
                f" p adj {s['p_adjusted']:.3g}"
            )
        return "\n".join(lines)


def _truth(
    session: LakeSession, model: RecordedModel, asset_ids: list[str], where: str
) -> tuple[pa.Table, Counter[str]]:
    """`asset_id`, `y_true` (model class index), `annotator`, `agreement`, `class`.

    Raises:
        ConfigError: no approved class label of the model's ontology on these assets, or
            only under other versions of it.
    """
    rows = session.read(
        LABELS,
        columns=["asset_id", "kind", "class_id", "class_name", "annotator", "agreement",
                 "ontology", "ontology_version"],
        filter=(text("ontology") == model.ontology) & (text("kind") == "class"),
    )  # fmt: skip
    rows = rows.filter(pc.is_in(rows["asset_id"], pa.array(asset_ids, pa.string())))
    mine = rows.filter(pc.equal(rows["ontology_version"], model.ontology_version))
    if mine.num_rows == 0:
        others = sorted(set(rows["ontology_version"].to_pylist()))
        if others:
            raise ConfigError(
                f"{where}: its labels use {model.ontology!r} version(s) {others}; model "
                f"{model.model_id} learnt v{model.ontology_version}: train on them, or "
                "evaluate a model of that version"
            )
        raise ConfigError(
            f"{where}: no approved class label of ontology {model.ontology!r}; nothing to evaluate"
        )
    index = {c["class_id"]: c["index"] for c in model.classes}
    by_asset: dict[str, list[dict[str, Any]]] = {}
    for r in mine.to_pylist():
        by_asset.setdefault(r["asset_id"], []).append(r)
    skipped: Counter[str] = Counter()
    out: list[dict[str, Any]] = []
    for asset_id in sorted(by_asset):
        labels = by_asset[asset_id]
        if len({r["class_id"] for r in labels}) > 1:
            skipped["conflicting"] += 1
            continue
        r = labels[0]
        if r["class_id"] not in index:
            skipped["class_not_learnt"] += 1
            continue
        out.append({"asset_id": asset_id, "y_true": index[r["class_id"]],
                    "annotator": r["annotator"], "agreement": r["agreement"],
                    "class": r["class_name"]})  # fmt: skip
    if not out:
        raise ConfigError(
            f"{where}: no label the model can be scored on ({dict(skipped)}: an asset with "
            "two classes, or a class the model did not learn)"
        )
    schema = pa.schema([("asset_id", pa.string()), ("y_true", pa.int64()),
                        ("annotator", pa.string()), ("agreement", pa.float32()),
                        ("class", pa.string())])  # fmt: skip
    return pa.Table.from_pylist(out, schema), skipped


def _slice_columns(lake: Lake, assets_version: int, asset_ids: pa.Array) -> pa.Table:
    """The asset view of `asset_ids` with `dup_group_size` added."""
    view = asset_view(lake, assets_version).table
    groups = view["dup_group"].to_pylist()
    sizes = Counter(g for g in groups if g is not None)
    size = [1 if g is None else sizes[g] for g in groups]
    view = view.append_column("dup_group_size", pa.array(size, pa.int64()))
    return view.filter(pc.is_in(view["asset_id"], asset_ids))


def evaluate(
    config: EvaluateConfig, *, lake: str | None = None, ray_address: str | None = None
) -> EvaluateSummary:
    """Scores a model on one side of a split into `evaluations`.

    Raises:
        ConfigError: an unknown model, split or side; labels of another ontology version;
            an unknown `--slice-by` column (the message lists them): nothing written.
    """
    unknown = [c for c in config.slice_by if c not in SLICE_COLUMNS]
    if unknown:
        raise ConfigError(
            f"--slice-by {', '.join(unknown)}: no such column; "
            f"available: {', '.join(SLICE_COLUMNS)}"
        )
    lk = Lake(lake)
    model = find_model(lk, config.model, config.experiment)
    session = lk.session("evaluate", {**config.model_dump(mode="json"), "model": model.model_id})
    versions = {spec.name: session.pin(spec) for spec in (ASSETS, LABELS, SPLITS)}
    missing = [k for k, v in versions.items() if v is None]
    if missing:
        raise ConfigError(f"table(s) {missing} do not exist yet: ingest, label and split first")
    where = f"split {config.split!r} side {config.on!r}"
    sides = session.read(SPLITS, columns=["asset_id", "split"],
                         filter=text("split_name") == config.split)  # fmt: skip
    if not sides.num_rows:
        raise ConfigError(f"--split {config.split!r}: no split of that name")
    on = sides.filter(pc.equal(sides["split"], config.on))
    if not on.num_rows:
        have = sorted(set(sides["split"].to_pylist()))
        raise ConfigError(f"--on {config.on!r}: split {config.split!r} has sides {have}")
    truth, skipped = _truth(session, model, on["asset_id"].to_pylist(), where)
    scoring = PredictConfig(model=model.model_id, **config.scoring())
    counts = predict_assets(session, lk, model, truth["asset_id"].to_pylist(), scoring,
                            ray_address)  # fmt: skip
    preds = session.read(PREDICTIONS, columns=["asset_id", "predicted_index", "probabilities"],
                         filter=text("model_id") == model.model_id)  # fmt: skip
    at = pc.index_in(truth["asset_id"], value_set=preds["asset_id"])  # Acero joins no lists
    rows = truth.filter(pc.is_valid(at))
    if not rows.num_rows:
        raise ConfigError(f"{where}: none of its labelled assets could be read and scored")
    found = preds.take(at.filter(pc.is_valid(at)))
    rows = rows.append_column("y_pred", found["predicted_index"].cast(pa.int64()))
    rows = rows.append_column("probabilities", found["probabilities"])
    if config.slice_by:
        view = _slice_columns(lk, versions["assets"] or 0, rows["asset_id"].combine_chunks())
        wanted = [c for c in config.slice_by if c not in rows.column_names]
        at = pc.index_in(rows["asset_id"], value_set=view["asset_id"])
        for name in wanted:  # an asset erased since its labels: nulls
            rows = rows.append_column(name, view[name].take(at))
    results = metrics.evaluate_slices(rows, list(config.slice_by), model.classes)
    now = dt.datetime.now(dt.UTC)
    common = {"run_id": session.run_id, "model_id": model.model_id, "split_name": config.split,
              "side": config.on, "labels_version": versions["labels"],
              "splits_version": versions["splits"],
              "predictions_version": session.pin(PREDICTIONS), "evaluated_at": now}  # fmt: skip
    session.commit(EVALUATIONS, pa.Table.from_pylist([{**common, **r} for r in results]))
    worst = metrics.worst_first(results)
    session.counts.update({
        "assets": rows.num_rows, "slices": len(results) - 1,
        "flagged": sum(1 for r in results if r["flagged"]),
        "predicted": counts["predicted"], "already_predicted": counts["already"],
        "accuracy_bp": round(10_000 * results[0]["accuracy"]),
        **{f"skipped_{k}": v for k, v in skipped.items()},
    })  # fmt: skip
    session.record()
    summary = EvaluateSummary.of(session.run)
    summary.model_id, summary.where = model.model_id, where
    summary.overall, summary.worst = results[0], worst[:SHOWN]
    return summary
