"""`smartray score` and `smartray select`: the active-learning step of the loop.

`score` runs `predict` on an experiment's pool (`pool.py`), with Monte-Carlo dropout
passes when BALD is wanted. `select` reads the pool and the model's predictions at
pinned versions, picks `budget` assets with a strategy (`maths.py`), and appends them to
`batches` as the experiment's next round, with every version it read and the seed, so
`select --replay ROUND` picks the same ids again.

1. Pin `assets`, `labels`, `splits`, `dup_groups`, `batches` and `predictions`.
2. Build the pool: no approved label under the model's ontology, not val/test, not
   picked before, one per near-duplicate group or video.
3. Read the model's predictions of the pool (and of the labelled assets: k-center's
   centers). Cold start (no model): the stored 32x32 image descriptors instead.
4. Pools over `prefilter_over` are two-stage for the diversity strategies: the most
   uncertain `prefilter_factor x budget` rows (at cold start a seeded sample), then
   diversity among them; only their vectors are read.
5. Commit the round to `batches`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from smartray.annotate.ledger import ontology_for
from smartray.errors import ConfigError, SmartrayError
from smartray.predict.config import PredictConfig
from smartray.predict.model import RecordedModel, find_model, has_model
from smartray.predict.pipeline import predict_assets
from smartray.predict.scorer import dropout_layers
from smartray.selection import maths
from smartray.selection.config import COLD_START, ScoreConfig, SelectConfig
from smartray.selection.pool import Pins, Pool, build_pool
from smartray.tables import ASSETS, Lake, LakeSession, RunSummary
from smartray.tables.catalog import BATCHES, MODELS, PREDICTIONS
from smartray.tables.filters import text

log = logging.getLogger(__name__)

NO_MODEL = "none"
POOL_ONTOLOGY = "pool_ontology"
UNSCORED = "not scored by the model"  # the settings key of the (name, version) a pool used
UNCERTAINTY = ("least-confidence", "margin", "entropy", "bald")
DIVERSITY = ("kcenter", "badge", "weighted")


class ReplayMismatch(SmartrayError):
    """Selecting a recorded round again gave other ids (exit 1)."""


@dataclass
class ScoreSummary(RunSummary):
    """What a score run did."""

    model_id: str = ""

    def line(self) -> str:
        """The job's summary line."""
        c = self.counts
        mc = f" with {c['mc_passes']} MC-dropout passes" if c.get("mc_passes") else ""
        return (
            f"score {self.run_id}: model {self.model_id} on the pool of {c['pool']} asset(s) "
            f"and {c['covered']} labelled train or picked asset(s){mc}: {c['predicted']} "
            f"predicted, {c['already']} already predicted"
        )


def model_ontology_is_current(lake: Lake, model: RecordedModel) -> None:
    """Refuses a model whose ontology has a newer version than the one it learnt.

    Raises:
        ConfigError: its classes may no longer be the ontology's.
    """
    latest = ontology_for(lake, model.ontology, None)
    if latest.version != model.ontology_version:
        raise ConfigError(
            f"model {model.model_id} learnt ontology {model.ontology!r} v"
            f"{model.ontology_version}, but its latest version is v{latest.version}: train a "
            "model on the new version first"
        )


def _model_split(lake: Lake, model: RecordedModel) -> str:
    row = lake.table(MODELS.name, columns=["model_id", "split_name"])
    found = row.filter(pc.equal(row["model_id"], model.model_id))["split_name"].to_pylist()
    return str(found[0])


def score(
    config: ScoreConfig, *, lake: str | None = None, ray_address: str | None = None
) -> ScoreSummary:
    """Scores the experiment's pool (and its labelled train assets) with the model.

    Raises:
        ConfigError: an unknown model or experiment, a model of an old ontology version,
            MC dropout asked of a model without dropout layers, an empty pool.
    """
    lk = Lake(lake)
    model = find_model(lk, config.model, config.experiment)
    model_ontology_is_current(lk, model)
    if config.mc_dropout:
        _has_dropout(model)
    split = _model_split(lk, model)
    session = lk.session("score", {**config.model_dump(mode="json"), "model": model.model_id})
    pins = Pins.now(session)
    pool = build_pool(
        session,
        lk,
        pins,
        experiment=config.experiment,
        ontology=(model.ontology, model.ontology_version),
        split=split,
        snapshot=config.snapshot,
        where=config.where,
        repick=config.repick,
    )
    if not pool.ids:
        raise ConfigError(_empty(pool, config.experiment))
    covered = pool.covered  # labelled train assets and earlier picks: k-center's centers
    scoring = PredictConfig(**config.scoring(), model=model.model_id)
    counts = predict_assets(
        session, lk, model, pool.ids + covered, scoring, ray_address, mc_passes=config.mc_dropout
    )
    session.counts.update(counts)
    session.counts.update(pool=len(pool.ids), covered=len(covered), mc_passes=config.mc_dropout)
    session.record()
    summary = ScoreSummary.of(session.run)
    summary.model_id = model.model_id
    return summary


def _has_dropout(model: RecordedModel) -> None:
    from smartray.train import nets

    if not dropout_layers(nets.build(model.architecture, len(model.classes))):
        raise ConfigError(
            f"--mc-dropout: model {model.model_id} ({model.architecture}) has no dropout "
            "layer, so every pass would be the same and BALD would be 0: score it without "
            "--mc-dropout, or train a model with dropout (small-cnn has one)"
        )


def _empty(pool: Pool, experiment: str) -> str:
    why = ", ".join(f"{n} {reason}" for reason, n in pool.left_out.most_common() if n)
    return f"experiment {experiment!r}: the pool is empty ({why or 'no assets'}); nothing selected"


# -- select ----------------------------------------------------------------------------------


@dataclass
class SelectSummary(RunSummary):
    """What a select run did."""

    experiment: str = ""
    round: int = 0
    ids: tuple[str, ...] = ()
    strategy: str = ""
    model_id: str | None = None
    seed: int = 0

    def line(self) -> str:
        """The job's summary line."""
        c = self.counts
        by = f"model {self.model_id}" if self.model_id else "no model (cold start)"
        stage = f", two-stage over the {c['survivors']} most uncertain" if c["survivors"] else ""
        unscored = (
            f" ({c['unscored']} left out: not scored by the model, run `smartray score`)"
            if c.get("unscored") else ""
        )  # fmt: skip
        return (
            f"select {self.run_id}: experiment {self.experiment!r} round {self.round}: "
            f"{c['picked']} of a pool of {c['pool']} asset(s) by {self.strategy} with {by}"
            f"{stage}{unscored}; batches v{self.versions.get('batches', '?')}"
        )


# asset ids -> their embeddings [n, D] and probabilities [n, C], in that order, and the
# embeddings of the covered assets that have one (k-center's centers)
Fetch = Callable[[list[str]], tuple[np.ndarray, np.ndarray, np.ndarray | None]]


@dataclass
class Inputs:
    """What a strategy reads, one row per pool candidate (sorted by asset id).

    The scalar scores are held for the whole pool; the vectors (embedding, probabilities)
    are either held too (`embedding`, `probabilities`, `centers`: tests, cold start) or
    fetched by `fetch` for the rows a strategy uses: after a two-stage prefilter, only the
    survivors' are ever read.
    """

    ids: list[str]
    groups: np.ndarray
    columns: dict[str, np.ndarray]  # confidence, margin, entropy, mutual_info, ... [N]
    probabilities: np.ndarray | None = None  # [N, C]
    embedding: np.ndarray | None = None  # [N, D]; descriptors at cold start
    centers: np.ndarray | None = None  # embeddings of what is labelled or picked
    fetch: Fetch | None = None

    def vectors(self, rows: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None,
                                                 np.ndarray | None]:  # fmt: skip
        """Embeddings and probabilities of `rows`, and the centers."""
        if self.fetch is not None:
            return self.fetch([self.ids[i] for i in rows.tolist()])
        emb = self.embedding[rows] if self.embedding is not None else None
        probs = self.probabilities[rows] if self.probabilities is not None else None
        return emb, probs, self.centers


def select(
    config: SelectConfig,
    *,
    lake: str | None = None,
    replay: int | None = None,
    recorded: Recorded | None = None,
) -> SelectSummary:
    """Picks the experiment's next batch into `batches` (or re-picks a recorded round).

    `replay` names a round of `batches`; `recorded` is a round read elsewhere (an
    `al_rounds` row). Either way nothing is written and the ids must come out the same.

    Raises:
        ConfigError: an unknown strategy or model, a model of an old ontology version, a
            strategy the scores cannot feed (BALD without MC passes, any model-based one
            at cold start), an empty pool, or a budget larger than the pool: nothing
            written. `ReplayMismatch`: a replayed round picked other ids.
    """
    lk = Lake(lake)
    session = lk.session("select", config.model_dump(mode="json"))
    if replay is not None:
        recorded = recorded_round(session, config.experiment, replay)
    if recorded is not None:
        config, pins, ontology = recorded.config, recorded.pins, recorded.ontology
        session.discard()  # a replay writes nothing
    model = _select_model(lk, config, recorded)
    if recorded is not None:
        split = config.split
    elif model is not None:
        model_ontology_is_current(lk, model)
        ontology = (model.ontology, model.ontology_version)
        split = config.split or _model_split(lk, model)
    else:
        if config.strategy not in COLD_START:
            raise ConfigError(
                f"--strategy {config.strategy}: experiment {config.experiment!r} has no model "
                f"to score the pool; without one choose {' or '.join(COLD_START)} (k-center "
                "over the image descriptors), or `smartray train` and `smartray score` first"
            )
        onto = ontology_for(lk, config.ontology, config.ontology_version)
        ontology, split = (onto.name, onto.version), config.split
    if recorded is None:
        pins = Pins.now(session)
        pins.versions[PREDICTIONS.name] = session.pin(PREDICTIONS)
    pool = build_pool(
        session,
        lk,
        pins,
        experiment=config.experiment,
        ontology=ontology,
        split=split,
        snapshot=config.snapshot,
        where=config.where,
        repick=config.repick,
    )
    if not pool.ids:
        raise ConfigError(_empty(pool, config.experiment))
    inputs = _inputs(session, pins, pool, model, config)
    components = len(np.unique(inputs.groups))
    if config.budget > components:
        raise ConfigError(
            f"--budget {config.budget}: the pool of experiment {config.experiment!r} has "
            f"{len(inputs.ids)} asset(s) in {components} duplicate group(s) or video(s), and "
            "a batch takes one of each: lower the budget"
        )
    seed = config.seed if config.seed is not None else secrets.randbelow(2**31)
    picks, survivors = choose(inputs, config, seed)
    ids = [inputs.ids[i] for i in picks.index]
    session.counts.update(picked=len(ids), pool=len(inputs.ids), survivors=survivors,
                          unscored=pool.left_out[UNSCORED])  # fmt: skip
    if recorded is not None:
        _compare(recorded.ids, ids, config.experiment, recorded.round)
        round_no = recorded.round
    else:
        round_no = _next_round(session, pins, config.experiment)
        rows = _rows(
            inputs, picks, config, model, seed, round_no, pins, session.run_id, split, ontology
        )
        _round_is_free(session, config.experiment, round_no)
        session.commit(BATCHES, pa.Table.from_pylist(rows, BATCHES.schema))
        session.record()
    summary = SelectSummary.of(session.run)
    summary.experiment, summary.round, summary.ids = config.experiment, round_no, tuple(ids)
    summary.strategy, summary.model_id = config.strategy, model.model_id if model else None
    summary.seed = seed
    return summary


def _select_model(
    lake: Lake, config: SelectConfig, recorded: Recorded | None
) -> RecordedModel | None:
    """The model whose predictions feed the strategy; None at cold start."""
    if recorded is not None:
        model_id = recorded.model_id
        return None if model_id is None else find_model(lake, model_id, config.experiment)
    if config.model == NO_MODEL:
        return None
    if config.model == "latest" and not has_model(lake, config.experiment):
        return None  # cold start
    return find_model(lake, config.model, config.experiment)


def _inputs(
    session: LakeSession, pins: Pins, pool: Pool, model: RecordedModel | None, cfg: SelectConfig
) -> Inputs:
    """The pool's scores (or descriptors at cold start) as arrays, in `pool.ids` order."""
    covered = pool.covered
    wants_vectors = cfg.strategy in DIVERSITY
    if model is None:

        def descriptors(wanted: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
            """The descriptors of `wanted` and of the covered assets (no probabilities)."""
            vectors = _descriptors(session, pins, wanted + covered)
            known = [vectors[a] for a in covered if a in vectors]
            emb = np.stack([vectors[a] for a in wanted])
            return emb, np.zeros((len(wanted), 0)), np.stack(known) if known else None

        return Inputs(pool.ids, pool.groups, {}, fetch=descriptors if wants_vectors else None)
    version = pins.of(PREDICTIONS.name)
    if version is None:
        raise ConfigError(_unscored(model))
    cols = ["asset_id", "predicted_index", "predicted_class_id", "predicted_class",
            "confidence", "margin", "entropy", "mutual_info", "mc_passes"]  # fmt: skip
    mine = text("model_id") == model.model_id
    table = session.read(PREDICTIONS, columns=cols, version=version, filter=mine)
    at = pc.index_in(pa.array(pool.ids, pa.string()), value_set=table["asset_id"])
    keep = np.flatnonzero(pc.is_valid(at).to_numpy(zero_copy_only=False))
    if not len(keep):
        raise ConfigError(_unscored(model))
    if len(keep) < len(pool.ids):
        pool.left_out[UNSCORED] += len(pool.ids) - len(keep)
        log.warning("%d pool asset(s) have no prediction by model %s and cannot be picked: "
                    "run `smartray score` first to include them", len(pool.ids) - len(keep),
                    model.model_id)  # fmt: skip
    picked = table.take(at.take(pa.array(keep)))
    columns = {name: picked[name].to_numpy(zero_copy_only=False) for name in cols[1:]}
    ids = [pool.ids[k] for k in keep.tolist()]
    covered = pool.covered

    def fetch(wanted: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The vectors of `wanted` (all scored) and of the scored covered assets: one scan."""
        both = pa.array(wanted + covered, pa.string())
        these = mine & pc.field("asset_id").isin(both)
        vectors = ["asset_id", "embedding", "probabilities"]
        rows = session.read(PREDICTIONS, columns=vectors, version=version, filter=these)
        where = pc.index_in(pa.array(wanted, pa.string()), value_set=rows["asset_id"])
        chosen = rows.take(where)
        found = pc.index_in(pa.array(covered, pa.string()), value_set=rows["asset_id"])
        centers = rows.take(found.drop_null())["embedding"]
        return (_matrix(chosen["embedding"]), _matrix(chosen["probabilities"]),
                _matrix(centers) if len(centers) else None)  # fmt: skip

    return Inputs(ids, pool.groups[keep], columns, fetch=fetch if wants_vectors else None)


def _unscored(model: RecordedModel) -> str:
    return (
        f"model {model.model_id} has scored none of the pool: run `smartray score --model "
        f"{model.model_id} --experiment {model.experiment}` first"
    )


def _matrix(column: pa.ChunkedArray) -> np.ndarray:
    """A `list<float>` column as a `[N, D]` float32 array."""
    arr = column.combine_chunks()
    flat = pc.list_flatten(arr).to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    out: np.ndarray = flat.reshape(len(arr), -1) if len(arr) else flat.reshape(0, 0)
    return out


def _descriptors(session: LakeSession, pins: Pins, ids: list[str]) -> dict[str, np.ndarray]:
    """Vectors of `ids` for cold-start k-center.

    The stored 32x32 descriptors, or the 64 bits of the pHash for every asset when some
    lack a descriptor.
    """
    rows = pins.read(
        session,
        ASSETS,
        columns=["asset_id", "descriptor", "phash"],
        filter=text("asset_id").isin(ids),
    )
    aids, descs = rows["asset_id"].to_pylist(), rows["descriptor"].to_pylist()
    if all(d is not None for d in descs):
        return {
            a: np.frombuffer(d, np.uint8).astype(np.float32) / 255.0
            for a, d in zip(aids, descs, strict=True)
        }
    hashes = rows["phash"].to_numpy().astype(">i8").view(np.uint8).reshape(-1, 8)
    bits = np.unpackbits(hashes, axis=1).astype(np.float32)
    return dict(zip(aids, bits, strict=True))


def uncertainty_of(name: str, columns: dict[str, np.ndarray]) -> np.ndarray:
    """Higher = more uncertain, for an uncertainty strategy or objective.

    Raises:
        ConfigError: `bald` without Monte-Carlo passes in the scores.
    """
    if name == "least-confidence":
        return 1.0 - columns["confidence"].astype(np.float64)
    if name == "margin":
        return 1.0 - columns["margin"].astype(np.float64)
    if name == "entropy":
        return columns["entropy"].astype(np.float64)
    mi = columns["mutual_info"]
    if mi.dtype == object or np.isnan(mi.astype(np.float64)).any():
        raise ConfigError(
            "BALD needs Monte-Carlo-dropout scores: run `smartray score --mc-dropout N` "
            "(these predictions have none)"
        )
    return mi.astype(np.float64)


def choose(inputs: Inputs, cfg: SelectConfig, seed: int) -> tuple[maths.Picks, int]:
    """The picks (indices into `inputs.ids`) and how many rows survived a prefilter (0: none).

    Raises:
        ConfigError: the scores cannot feed the strategy (BALD without MC passes).
    """
    n, strategy = len(inputs.ids), cfg.strategy
    if strategy == "random":
        return maths.random_picks(n, cfg.budget, inputs.groups, seed), 0
    if strategy in UNCERTAINTY:
        return maths.top_scores(
            uncertainty_of(strategy, inputs.columns), cfg.budget, inputs.groups
        ), 0
    rows = np.arange(n)
    survivors = 0
    if n > cfg.prefilter_over:  # two stages: the most uncertain (cold start: a sample)
        keep = min(n, cfg.prefilter_factor * cfg.budget)
        first = (uncertainty_of(cfg.prefilter_by, inputs.columns) if inputs.columns
                 else np.random.default_rng(seed).random(n))  # fmt: skip
        rows = maths.prefilter(first, keep, inputs.groups)
        survivors = len(rows)
    groups = inputs.groups[rows]
    emb, probs, centers = inputs.vectors(rows)
    if strategy == "kcenter":
        assert emb is not None
        picks = maths.kcenter_greedy(emb, cfg.budget, groups, centers, seed)
    elif strategy == "badge":
        assert emb is not None
        assert probs is not None
        picks = maths.badge(probs, emb, cfg.budget, groups, seed)
    else:
        objectives = {
            name: uncertainty_of(name, inputs.columns)[rows]
            for name in cfg.weights
            if name != "kcenter" and cfg.weights[name]
        }
        predicted = inputs.columns["predicted_index"][rows].astype(np.int64)
        picks = maths.weighted(
            objectives,
            cfg.weights,
            cfg.budget,
            groups,
            embedding=emb,
            centers=centers,
            predicted=predicted if cfg.class_balance else None,
        )
    return maths.Picks(rows[picks.index], picks.score), survivors


def _next_round(session: LakeSession, pins: Pins, experiment: str) -> int:
    rows = pins.read(
        session,
        BATCHES,
        columns=["round"],
        filter=text("experiment") == experiment,
    )
    return int(pc.max(rows["round"]).as_py() or 0) + 1 if rows.num_rows else 1


def _round_is_free(session: LakeSession, experiment: str, round_no: int) -> None:
    """Refuses to write a round another `select` wrote since this one pinned `batches`.

    Raises:
        SmartrayError: the round is taken (exit 1: select again, it becomes the next).
    """
    latest = session.latest_version(BATCHES) if session.exists(BATCHES) else None
    if latest is None:
        return
    taken = session.read(BATCHES, columns=["asset_id"], version=latest,
                         filter=(text("experiment") == experiment)
                         & (pc.field("round") == round_no))  # fmt: skip
    if taken.num_rows:
        raise SmartrayError(
            f"experiment {experiment!r} round {round_no} was written by another select "
            "while this one ran; nothing written: select again for the next round"
        )


def _rows(
    inputs: Inputs,
    picks: maths.Picks,
    cfg: SelectConfig,
    model: RecordedModel | None,
    seed: int,
    round_no: int,
    pins: Pins,
    run_id: str,
    split: str | None,
    ontology: tuple[str, int],
) -> list[dict[str, Any]]:
    settings = {
        **cfg.model_dump(mode="json"),
        "seed": seed,
        "split": split,
        POOL_ONTOLOGY: list(ontology),
    }
    now = dt.datetime.now(dt.UTC)
    cols = inputs.columns

    def val(name: str, i: int) -> Any:
        if name not in cols:
            return None
        v = cols[name][i]
        v = v.item() if isinstance(v, np.generic) else v
        return None if v is None or (isinstance(v, float) and np.isnan(v)) else v

    out = []
    for rank, (i, s) in enumerate(zip(picks.index.tolist(), picks.score.tolist(), strict=True)):
        out.append(
            {
                "experiment": cfg.experiment,
                "round": round_no,
                "asset_id": inputs.ids[i],
                "rank": rank,
                "strategy": cfg.strategy,
                "score": None if not np.isfinite(s) else float(s),
                "model_id": model.model_id if model else None,
                "predicted_class_id": val("predicted_class_id", i),
                "predicted_class": val("predicted_class", i),
                "confidence": val("confidence", i),
                "margin": val("margin", i),
                "entropy": val("entropy", i),
                "mutual_info": val("mutual_info", i),
                "budget": cfg.budget,
                "pool_size": len(inputs.ids),
                "seed": seed,
                "settings": json.dumps(settings, sort_keys=True),
                "assets_version": pins.of("assets"),
                "labels_version": pins.of("labels"),
                "splits_version": pins.of("splits"),
                "predictions_version": pins.of("predictions"),
                "dup_groups_version": pins.of("dup_groups"),
                "asset_sources_version": pins.of("asset_sources"),
                "batches_version": pins.of("batches"),
                "label_events_version": pins.of("label_events"),
                "run_id": run_id,
                "selected_at": now,
            }
        )
    return out


# the tables whose version a round records (`<name>_version` in batches and al_rounds)
RECORDED_VERSIONS = (
    "assets", "asset_sources", "labels", "splits", "dup_groups", "batches", "predictions",
    "label_events",
)  # fmt: skip


@dataclass(frozen=True)
class Recorded:
    """A selected round as recorded: enough to select it again and compare.

    Attributes:
        config: Its select settings, the seed fixed.
        pins: The versions its pool and scores were read at.
        ontology: The (name, version) its pool was built under.
        round: Its number.
        ids: What it picked, in pick order.
        model_id: The model whose scores it used (None: cold start).
    """

    config: SelectConfig
    pins: Pins
    ontology: tuple[str, int]
    round: int
    ids: list[str]
    model_id: str | None

    @classmethod
    def of(cls, row: dict[str, Any], ids: list[str]) -> Recorded:
        """From a `batches` or `al_rounds` row (both hold the settings and the versions).

        A version a row predates is None: that table is read as empty (an old round
        never needed it).
        """
        settings = json.loads(row["settings"])
        name, version = settings.pop(POOL_ONTOLOGY)
        config = SelectConfig(**{**settings, "seed": row["seed"]})
        pins = Pins({n: row.get(f"{n}_version") for n in RECORDED_VERSIONS})
        return cls(config, pins, (name, int(version)), int(row["round"]), ids, row["model_id"])


def recorded_round(session: LakeSession, experiment: str, round_no: int) -> Recorded:
    """Round `round_no` of `experiment` as `batches` holds it.

    Raises:
        ConfigError: no such round.
    """
    rows = session.read(
        BATCHES,
        missing_ok=True,
        filter=(text("experiment") == experiment) & (pc.field("round") == round_no),
    ).to_pylist()
    if not rows:
        raise ConfigError(f"--replay {round_no}: experiment {experiment!r} has no such round")
    rows.sort(key=lambda r: r["rank"])
    return Recorded.of(rows[0], [r["asset_id"] for r in rows])


def _compare(want: list[str], ids: list[str], experiment: str, round_no: int) -> None:
    if ids != want:
        same = sum(a == b for a, b in zip(ids, want, strict=False))
        raise ReplayMismatch(
            f"experiment {experiment!r} round {round_no} selected again: {same} of "
            f"{len(want)} ids in the same place; the recorded batch differs"
        )
