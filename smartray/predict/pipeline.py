"""`smartray predict`: a recorded model scores assets into `predictions`, on Ray Data.

1. Find the model (an id or `latest`) and the assets to score (a split and its sides, a
   snapshot, a `--where` over the asset view, or all), at a pinned `assets` version.
2. Leave out the (model, asset) pairs `predictions` already holds.
3. Fetch the best checkpoint, checking every file's sha256 against `models`.
4. Ray Data: a pool of `FileScorer` actors (GPU actors with `use_gpu`) takes the Parquet
   files of the pinned `assets` one at a time, reads and decodes them
   (`train.inputs.read_decode`, the model's image size, no augmentation) and computes
   probabilities, uncertainty and the embedding, and writes the rows as `predictions`
   parts. The driver sees asset ids and part-file names, never images or embeddings.
5. Commit the parts once (`LakeSession.commit(mode="parts")`).

`predict_assets` is the reusable core: `smartray evaluate` calls it for the pairs it
still lacks.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import ray
import ray.data

from smartray.cluster.local import ensure_ray
from smartray.curate.view import asset_view
from smartray.errors import ConfigError
from smartray.predict.config import PredictConfig, Scoring
from smartray.predict.model import RecordedModel, find_model, load_weights
from smartray.predict.scoring import FileScorer
from smartray.sample.snapshots import snapshot_members
from smartray.tables import ASSETS, SPLITS, Lake, LakeSession, PartFile, RunSummary
from smartray.tables.catalog import PREDICTIONS
from smartray.tables.filters import filter_table, text

log = logging.getLogger(__name__)

PART_ROWS = 4096  # predictions per part file, at most


@dataclass
class PredictSummary(RunSummary):
    """What a predict run did."""

    model_id: str = ""

    def line(self) -> str:
        """The job's summary line."""
        c = self.counts
        line = (
            f"predict {self.run_id}: model {self.model_id} on {c['assets']} asset(s): "
            f"{c['predicted']} predicted, {c['already']} already predicted"
        )
        if c["unreadable"]:
            line += f", {c['unreadable']} not in assets v{c['assets_version']}"
        if "predictions" in self.versions:
            line += f"; predictions v{self.versions['predictions']}"
        return line


def choose_assets(session: LakeSession, lake: Lake, config: PredictConfig) -> list[str]:
    """The asset ids `config` names (intersected), sorted; all assets if it names none.

    Raises:
        ConfigError: an unknown split, side or snapshot, a bad `--where`, or nothing left.
    """
    version = session.pin(ASSETS)
    if version is None:
        raise ConfigError(f"lake {lake.uri!r} has no assets yet: run `smartray ingest` first")
    if config.side and not config.split:
        raise ConfigError("--side narrows a split: give --split NAME too")
    chosen: set[str] | None = None
    if config.split:
        rows = session.read(SPLITS, columns=["split_name", "asset_id", "split"],
                            filter=text("split_name") == config.split, missing_ok=True)  # fmt: skip
        if not rows.num_rows:
            raise ConfigError(f"--split {config.split!r}: no split of that name")
        if config.side:
            sides = set(rows.column("split").to_pylist())
            unknown = sorted(set(config.side) - sides)
            if unknown:
                raise ConfigError(f"--side {unknown}: split {config.split!r} has {sorted(sides)}")
            rows = rows.filter(pc.is_in(rows["split"], pa.array(list(config.side))))
        chosen = set(rows.column("asset_id").to_pylist())
    if config.snapshot:
        members = set(snapshot_members(lake, config.snapshot).column("asset_id").to_pylist())
        chosen = members if chosen is None else chosen & members
    if config.where or chosen is None:
        view = asset_view(lake, version).table
        picked = set(filter_table(view, config.where).column("asset_id").to_pylist())
        chosen = picked if chosen is None else chosen & picked
    if not chosen:
        raise ConfigError("no asset matches the split, snapshot and --where given; nothing scored")
    return sorted(chosen)


def predict_assets(
    session: LakeSession,
    lake: Lake,
    model: RecordedModel,
    asset_ids: list[str],
    config: Scoring,
    ray_address: str | None = None,
    mc_passes: int = 0,
) -> dict[str, int]:
    """Scores the assets of `asset_ids` that `model` has no prediction for yet; commits.

    With `mc_passes`, a prediction made with another number of Monte-Carlo passes counts
    as missing and is scored again with them; the parts are then read back and committed
    as one upsert (a MERGE on the key), so the old rows are replaced in the same commit
    that adds the new ones (the driver holds those rows then: all of them, embeddings
    included).

    Returns counts: `assets` asked, `predicted` now, `already` there, `unreadable` (not
    in the pinned `assets` version).
    """
    assets_version = session.pin(ASSETS)
    have: set[str] = set()
    redo: list[str] = []
    if session.pin(PREDICTIONS) is not None:
        done = session.read(PREDICTIONS, columns=["asset_id", "mc_passes"],
                            filter=text("model_id") == model.model_id)  # fmt: skip
        passes = pc.fill_null(done["mc_passes"], 0).to_pylist()
        wanted = set(asset_ids)
        for aid, n in zip(done["asset_id"].to_pylist(), passes, strict=True):
            if n == mc_passes or not mc_passes:  # BALD compares like with like: same passes
                have.add(aid)
            elif aid in wanted:
                redo.append(aid)
    todo = [a for a in asset_ids if a not in have]
    counts = {"assets": len(asset_ids), "already": len(asset_ids) - len(todo), "predicted": 0,
              "unreadable": 0, "assets_version": assets_version or 0}  # fmt: skip
    weights = load_weights(lake, model)  # checked even with nothing new: a bad model fails
    if not todo:
        return counts
    started = ensure_ray(ray_address)
    try:
        _wait_for_resources(config, 0.0 if started else config.resource_wait_s)
        parts = _score(lake, model, weights, todo, assets_version or 0, config, session.run_id,
                       mc_passes)  # fmt: skip
    finally:
        if started:
            ray.shutdown()
    if redo:  # rows to replace: one MERGE commits the new and the replaced rows at once
        result = session.commit(PREDICTIONS, _read_parts(lake, parts), mode="upsert")
        _delete_parts(lake, parts)
    else:
        result = session.commit(PREDICTIONS, parts=parts, mode="parts")
    counts["predicted"] = result.rows_written
    counts["unreadable"] = len(todo) - sum(p.num_records for p in parts)
    return counts


def _read_parts(lake: Lake, parts: list[PartFile]) -> pa.Table:
    """The rows of part files the actors wrote (uncommitted) into `predictions`' folder."""
    import pyarrow.parquet as pq

    fs, root = lake.location.filesystem()
    tables = [pq.read_table(f"{root}/{PREDICTIONS.name}/{p.path}", filesystem=fs) for p in parts]
    return pa.concat_tables(tables) if tables else PREDICTIONS.schema.empty_table()


def _delete_parts(lake: Lake, parts: list[PartFile]) -> None:
    """Removes part files whose rows went in another way (never referenced by the log)."""
    fs, root = lake.location.filesystem()
    for p in parts:
        fs.delete_file(f"{root}/{PREDICTIONS.name}/{p.path}")


def _wait_for_resources(config: Scoring, wait_s: float) -> None:
    """Waits up to `wait_s` for the CPUs and GPUs the actors need; raises if they never come.

    Ray Data would otherwise wait for its actors forever.
    """
    need = {"CPU": config.actors * config.cpus_per_actor,
            "GPU": float(config.actors) if config.use_gpu else 0.0}  # fmt: skip
    deadline = time.monotonic() + wait_s
    while True:
        have = ray.cluster_resources()  # type: ignore[no-untyped-call]
        short = {k: v for k, v in need.items() if float(have.get(k, 0)) < v}
        if not short:
            return
        if time.monotonic() >= deadline:
            missing = ", ".join(f"{v:g} {k} (the cluster has {float(have.get(k, 0)):g})"
                                for k, v in short.items())  # fmt: skip
            raise ConfigError(
                f"the scoring actors need {missing}: lower --actors or --cpus-per-actor, "
                "drop --use-gpu, or add workers"
            )
        time.sleep(min(5.0, wait_s))


def _score(
    lake: Lake,
    model: RecordedModel,
    weights: dict[str, Any],
    todo: list[str],
    assets_version: int,
    config: Scoring,
    run_id: str,
    mc_passes: int,
) -> list[PartFile]:
    """The Ray Data pipeline: read + decode, score on an actor pool, write parts."""
    files = lake.files(ASSETS.name, assets_version)
    wanted = pa.table({"asset_id": pa.array(todo, pa.string()),
                       "label": pa.array([0] * len(todo), pa.int64())})  # fmt: skip
    items = ray.data.from_items([{"path": f} for f in files], override_num_blocks=len(files) or 1)
    written = items.map_batches(
        FileScorer,
        batch_size=1,  # one file per call
        compute=ray.data.ActorPoolStrategy(size=config.actors),
        num_cpus=config.cpus_per_actor,
        num_gpus=1 if config.use_gpu else 0,
        fn_constructor_kwargs={
            "location": lake.location,
            "wanted": wanted,
            "image_size": model.image_size,
            "max_rows": config.batch_size,
            "part_rows": PART_ROWS,
            "part": {
                "model_id": model.model_id,
                "classes": model.classes,
                "assets_version": assets_version,
                "run_id": run_id,
            },
            "architecture": model.architecture,
            "num_classes": len(model.classes),
            "weights": weights,
            "use_gpu": config.use_gpu,
            "threads": max(1, int(config.cpus_per_actor)),
            "mc_passes": mc_passes,
        },
    )
    return [PartFile(**row) for row in written.take_all()]


def predict(
    config: PredictConfig, *, lake: str | None = None, ray_address: str | None = None
) -> PredictSummary:
    """Scores the chosen assets with the model into `predictions`.

    Raises:
        ConfigError: an unknown model, split, side or snapshot, a bad `--where`, no asset
            chosen: nothing scored or written. `CheckpointError` (a `ConfigError`): the
            checkpoint does not match what `models` recorded.
    """
    lk = Lake(lake)
    model = find_model(lk, config.model, config.experiment)
    session = lk.session("predict", {**config.model_dump(mode="json"), "model": model.model_id})
    asset_ids = choose_assets(session, lk, config)
    counts = predict_assets(session, lk, model, asset_ids, config, ray_address)
    session.counts.update(counts)
    session.record()
    summary = PredictSummary.of(session.run)
    summary.model_id = model.model_id
    return summary
