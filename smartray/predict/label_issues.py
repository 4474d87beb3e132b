"""`smartray find-label-issues`: confident learning on out-of-sample probabilities.

1. Pin `labels`, `splits`, `assets`; take the split's assets (every side) with one
   approved image-level class label of the ontology version.
2. Deal them into K folds **by near-duplicate group** (`dup_groups`, which also keeps a
   video's frames and an augmented asset's children together; an asset curate has not
   seen is its own group), the largest groups first, each into the emptiest fold, so a
   near-copy never sits on both sides of a fold.
3. Record each fold as a split (`<split>.fold<k>of<K>`: `val` = the fold, `train` = the
   rest) and train a model on it (`smartray train`, experiment `label-issues:<split>`).
4. Score each fold's held-out assets with its model (`predict_assets`): every asset gets
   probabilities from a model that never saw it.
5. cleanlab's `find_label_issues` (confident learning, ranked by self-confidence) picks
   the suspected errors; they go to `label_issues` with the approved label's event id,
   so `smartray review --from-label-issues` can act on them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from smartray.annotate.ledger import ontology_for
from smartray.cluster.local import connected
from smartray.curate.view import asset_view
from smartray.errors import ConfigError
from smartray.predict.config import LabelIssuesConfig, PredictConfig
from smartray.predict.model import FOLD_EXPERIMENT, find_model
from smartray.predict.pipeline import predict_assets
from smartray.tables import ASSETS, SPLITS, Lake, LakeSession, RunSummary
from smartray.tables.catalog import LABEL_ISSUES, LABELS, PREDICTIONS
from smartray.tables.filters import text
from smartray.train.config import TrainConfig
from smartray.train.inputs import LABEL_COLUMNS

log = logging.getLogger(__name__)

SHOWN = 5  # issues in the summary


@dataclass
class LabelIssuesSummary(RunSummary):
    """What a find-label-issues run found."""

    split: str = ""
    fold_models: list[str] = field(default_factory=list)
    top: list[dict[str, Any]] = field(default_factory=list)

    def line(self) -> str:
        """The summary, then the most likely errors, one per line."""
        c = self.counts
        lines = [
            f"find-label-issues {self.run_id}: split {self.split!r}: {c['labelled']} labelled "
            f"asset(s) in {c['folds']} folds (models {', '.join(self.fold_models)}): "
            f"{c['issues']} label issue(s)"
        ]
        for r in self.top:
            lines.append(
                f"  #{r['rank']} {r['asset_id'][:16]}: labelled {r['given_class']!r}, the "
                f"model says {r['suggested_class']!r} (p(given) {r['self_confidence']:.3f})"
            )
        return "\n".join(lines)


def assign_folds(groups: dict[str, str], folds: int, seed: int) -> dict[str, int]:
    """Asset -> fold: whole groups, largest first, each into the fold with fewest assets.

    Ties among equal groups are broken by a seeded hash, so the same seed deals the same.
    """
    members: dict[str, list[str]] = {}
    for asset, group in groups.items():
        members.setdefault(group, []).append(asset)

    def order(g: str) -> tuple[int, str]:
        return -len(members[g]), hashlib.sha256(f"{seed}:{g}".encode()).hexdigest()

    sizes = [0] * folds
    out: dict[str, int] = {}
    for g in sorted(members, key=order):
        k = min(range(folds), key=lambda i: (sizes[i], i))
        sizes[k] += len(members[g])
        for asset in members[g]:
            out[asset] = k
    return out


def _labelled(session: LakeSession, config: LabelIssuesConfig, lk: Lake) -> pa.Table:
    """`asset_id`, `label_id`, `class_id`, `class_name` of the split's labelled assets.

    Raises:
        ConfigError: no such split, no approved labels of the ontology version, or
            `folds` outside 2..(smallest class count).
    """
    ontology = ontology_for(lk, config.ontology, config.ontology_version)
    split = session.read(SPLITS, columns=["asset_id"], filter=text("split_name") == config.split)
    if not split.num_rows:
        raise ConfigError(f"--split {config.split!r}: no split of that name")
    labels = session.read(
        LABELS, columns=[*LABEL_COLUMNS, "label_id", "class_name"],
        filter=(text("ontology") == ontology.name) & (text("kind") == "class"),
    )  # fmt: skip
    labels = labels.filter(pc.equal(labels["ontology_version"], ontology.version))
    labels = labels.filter(pc.is_in(labels["asset_id"], split["asset_id"]))
    per_asset = Counter(labels["asset_id"].to_pylist())
    single = pa.array([a for a, n in per_asset.items() if n == 1], pa.string())
    labels = labels.filter(pc.is_in(labels["asset_id"], single)).sort_by("asset_id")
    if not labels.num_rows:
        raise ConfigError(
            f"split {config.split!r}: no approved class label of {ontology.name!r} "
            f"v{ontology.version}; nothing to check"
        )
    counts = Counter(labels["class_name"].to_pylist())
    smallest = min(counts.values())
    if config.folds > smallest:
        rare = min(counts, key=lambda k: counts[k])
        raise ConfigError(
            f"--folds {config.folds}: above the smallest class count ({rare!r} has "
            f"{smallest}); each fold's training side needs every class"
        )
    return labels.select(["asset_id", "label_id", "class_id", "class_name"])


def _fold_splits(session: LakeSession, name: str, folds: dict[str, int], k: int) -> str:
    """Commits the fold splits (`val` = fold i, `train` = the rest); returns the name stem.

    The fold splits of an earlier run with the same name and K are deleted first.
    """
    stem = f"{name}.fold{{}}of{k}"
    now = dt.datetime.now(dt.UTC)
    rows = [
        {"split_name": stem.format(i), "asset_id": a, "split": "val" if f == i else "train",
         "group_key": f"fold{f}", "run_id": session.run_id, "assigned_at": now}
        for i in range(k) for a, f in sorted(folds.items())
    ]  # fmt: skip
    names = ", ".join(f"'{stem.format(i)}'" for i in range(k))
    if session.pin(SPLITS) is not None:  # a rerun: no row of an earlier dealing stays
        session.commit(SPLITS, mode="where", predicate=f"split_name IN ({names})")
    session.commit(SPLITS, pa.Table.from_pylist(rows), mode="upsert")
    return stem


def find_label_issues(
    config: LabelIssuesConfig, *, lake: str | None = None, ray_address: str | None = None
) -> LabelIssuesSummary:
    """Trains K fold models, scores each fold out of sample, records the suspected errors.

    Raises:
        ConfigError: an unknown split, no labels, bad `--folds`, a fold whose training
            side lacks a class: nothing written to `label_issues`.
    """
    from cleanlab.filter import find_label_issues as cleanlab_issues

    from smartray.train.pipeline import train

    lk = Lake(lake)
    session = lk.session("find-label-issues", config.model_dump(mode="json"))
    for spec in (ASSETS, LABELS, SPLITS):
        if session.pin(spec) is None:
            raise ConfigError(f"table {spec.name!r} does not exist yet: ingest, label and split")
    labelled = _labelled(session, config, lk)
    ids = labelled["asset_id"].to_pylist()
    view = asset_view(lk, session.pin(ASSETS)).table
    group_of = dict(zip(view["asset_id"].to_pylist(), view["dup_group"].to_pylist(), strict=True))
    folds = assign_folds({a: group_of.get(a) or a for a in ids}, config.folds, config.seed)
    stem = _fold_splits(session, config.split, folds, config.folds)
    models = []
    with connected(ray_address):
        for i in range(config.folds):
            trained = train(
                TrainConfig(split=stem.format(i), experiment=f"{FOLD_EXPERIMENT}{config.split}",
                            ontology=config.ontology, ontology_version=config.ontology_version,
                            model=config.model, image_size=config.image_size,
                            epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                            augment=config.augment, seed=config.seed + i,
                            use_gpu=config.use_gpu),
                lake=lk.uri,
            )  # fmt: skip
            log.info("fold %d of %d: %s", i + 1, config.folds, trained.line())
            model = find_model(lk, trained.model_id)
            held_out = [a for a in ids if folds[a] == i]
            scoring = PredictConfig(model=model.model_id, actors=config.actors,
                                    use_gpu=config.use_gpu)  # fmt: skip
            predict_assets(session, lk, model, held_out, scoring)
            models.append(model)
    probs, suggested = _out_of_sample(session, models, ids, folds)
    index = {c["class_id"]: c["index"] for c in models[0].classes}
    given = np.array([index[c] for c in labelled["class_id"].to_pylist()], np.int64)
    ranked = cleanlab_issues(given, probs, return_indices_ranked_by="self_confidence")
    classes = models[0].classes
    now = dt.datetime.now(dt.UTC)
    rows = []
    for rank, i in enumerate(ranked.tolist()):
        g, s = int(given[i]), int(suggested[i])
        rows.append({
            "run_id": session.run_id, "asset_id": ids[i], "split_name": config.split,
            "label_id": labelled["label_id"][i].as_py(),
            "given_class_id": classes[g]["class_id"], "given_class": classes[g]["name"],
            "suggested_class_id": classes[s]["class_id"], "suggested_class": classes[s]["name"],
            "self_confidence": float(probs[i, g]), "rank": rank, "fold": folds[ids[i]],
            "fold_model": models[folds[ids[i]]].model_id, "found_at": now,
        })  # fmt: skip
    session.commit(LABEL_ISSUES, pa.Table.from_pylist(rows, LABEL_ISSUES.schema))
    session.counts.update({"labelled": len(ids), "folds": config.folds, "issues": len(rows)})
    session.record()
    summary = LabelIssuesSummary.of(session.run)
    summary.split, summary.fold_models = config.split, [m.model_id for m in models]
    summary.top = rows[:SHOWN]
    return summary


def _out_of_sample(
    session: LakeSession, models: list[Any], ids: list[str], folds: dict[str, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Each asset's probabilities [N, C] from its fold's model, and their argmax.

    Raises:
        ConfigError: a labelled asset has no prediction (it could not be read).
    """
    by_model = {m.model_id: i for i, m in enumerate(models)}
    preds = session.read(PREDICTIONS, columns=["model_id", "asset_id", "probabilities"],
                         filter=text("model_id").isin(list(by_model)))  # fmt: skip
    found: dict[str, list[float]] = {}
    for m, a, p in zip(preds["model_id"].to_pylist(), preds["asset_id"].to_pylist(),
                       preds["probabilities"].to_pylist(), strict=True):  # fmt: skip
        if by_model[m] == folds.get(a):
            found[a] = p
    missing = [a for a in ids if a not in found]
    if missing:
        raise ConfigError(f"{len(missing)} labelled asset(s) could not be scored: {missing[:3]}")
    probs = np.asarray([found[a] for a in ids], np.float64)
    return probs, probs.argmax(axis=1)
