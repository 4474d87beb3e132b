"""The demo end to end: build a small real corpus, ingest it twice, manage the lake, show it.

One Ray (started here unless the process already has one) serves every stage in turn.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ray

from smartray.annotate import import_labels, load_ontology, register, review
from smartray.cluster import ensure_ray
from smartray.curate import CurateConfig, curate
from smartray.demo.corpus import build_corpus
from smartray.ingest import IngestConfig, ingest
from smartray.loop import LoopConfig, loop, round_line
from smartray.predict import EvaluateConfig, LabelIssuesConfig, evaluate, find_label_issues
from smartray.query import format_lake, format_table, query
from smartray.sample import snapshot_names, take_snapshot
from smartray.split import check_leaks, split
from smartray.tables import Lake
from smartray.testing import digits
from smartray.train import TrainConfig, train

GROUPS_QUERY = (
    "SELECT g.dup_group, count(*) AS assets, min(a.media_type) AS kind, "
    "count(DISTINCT s.split) AS splits FROM dup_groups g JOIN assets a ON a.asset_id = g.asset_id "
    "JOIN splits s ON s.asset_id = g.asset_id AND s.split_name = 'demo' "
    "GROUP BY g.dup_group HAVING count(*) > 1 ORDER BY assets DESC, g.dup_group LIMIT 8"
)
DEMO_QUERY = (
    "SELECT reason, count(*) AS inputs, min(source_uri) AS example "
    "FROM quarantine GROUP BY reason ORDER BY reason"
)
VIDEOS_QUERY = (
    "SELECT v.codec, v.width, v.height, round(v.duration_s, 1) AS seconds, "
    "count(a.asset_id) AS frames_kept FROM videos v JOIN assets a ON a.video_id = v.video_id "
    "GROUP BY v.codec, v.width, v.height, v.duration_s ORDER BY seconds DESC"
)
ASSETS_QUERY = (
    "SELECT a.source_format, a.format, count(*) AS assets, sum(a.blurred_regions) AS blurred, "
    "round(avg(a.blur), 1) AS mean_blur FROM assets a GROUP BY a.source_format, a.format "
    "ORDER BY assets DESC"
)

LOOP_EXPERIMENT = "digits-loop"
LOOP_ROUNDS = 4  # a cold start, then three rounds that train
LOOP_BUDGET = 100


def run_demo(
    data: str,
    *,
    lake: str | None = None,
    ray_address: str | None = None,
    loop_rounds: int = LOOP_ROUNDS,
) -> Iterator[str]:
    """Builds the corpus, ingests it twice, manages the lake; yields what to print as it goes.

    Args:
        data: Folder the demo corpus is written to.
        lake: Lake root (default env `SMARTRAY_LAKE` or ./lake).
        ray_address: Ray cluster to join (default: a local Ray, stopped at the end).
        loop_rounds: Active-learning rounds on the digits (0: none).
    """
    root = build_corpus(data)
    yield f"demo corpus: {root.resolve()}"
    started = ensure_ray(ray_address)
    try:
        config = IngestConfig(sources=(str(root),), lake=lake)
        yield "first run:  " + ingest(config).line()
        yield "second run: " + ingest(config).line()
        yield from manage(lake)
        digits_folder = Path(data).resolve().parent / f"{Path(data).name}-digits"
        yield from train_digits(digits_folder, lake)
        if loop_rounds:
            yield from loop_digits(digits_folder, lake, loop_rounds)
    finally:
        if started:
            ray.shutdown()
    yield ""
    yield format_lake(Lake(lake))
    for sql in (ASSETS_QUERY, VIDEOS_QUERY, GROUPS_QUERY, DEMO_QUERY):
        yield f"\n$ smartray query {sql!r}"
        yield format_table(query(sql, lake=lake))
    if loop_rounds:
        yield from loop_summary(digits_folder, lake)


def manage(lake: str | None) -> Iterator[str]:
    """Groups near-duplicates, splits by group, draws a diverse snapshot, checks leaks."""
    yield "curate:     " + curate(CurateConfig(), lake=lake).line()
    summary = split("demo", "train=0.8,val=0.1,test=0.1", lake=lake)
    yield "\n".join(["split:", *summary.lines()])
    yield "leaks:      " + check_leaks(lake=lake, split_name="demo").lines()[0]
    # snapshots never change: one per assets version
    name = f"demo-diverse-v{Lake(lake).version('assets')}"
    if name in snapshot_names(Lake(lake)):
        yield f"sample:     snapshot {name!r} exists (drawn by an earlier demo)"
    else:
        snap = take_snapshot(
            name, strategy="diverse", n=12, lake=lake, where="media_type = 'image'"
        )
        yield "sample:     " + snap.line()


PLANTED_FLIPS = 54  # 3 % of the digits get a wrong label

DIGITS_ONTOLOGY = "name: digits\nversion: 1\nkinds: [class]\nclasses:\n" + "".join(
    f"  - {{id: {i}, name: {name}}}\n" for i, name in enumerate(digits.NAMES)
)


def train_digits(folder: Path, lake: str | None) -> Iterator[str]:
    """Labels scikit-learn's 1,797 digits from their class folders and trains on them.

    The flow of a user with a labelled folder: ingest, register the ontology, import the
    folders as labels, approve them, regroup, split by group, train a small CNN on CPU,
    evaluate it per slice and find label errors. 3 % of the digits are filed under a
    wrong folder first (`PLANTED_FLIPS`): the demo reports how many of them the label
    issue ranking puts at its top.
    """
    images, manifest = folder / "images", folder / "planted-flips.json"
    if len(list(images.glob("*/*.png"))) != digits.COUNT or not manifest.exists():
        shutil.rmtree(images, ignore_errors=True)  # the same bytes each time: written once
        planted = digits.plant_flips(digits.write_pngs(images), PLANTED_FLIPS)
        manifest.write_text(json.dumps(planted, sort_keys=True))
    planted = json.loads(manifest.read_text())
    yield (
        f"digits:     {len(planted)} of {digits.COUNT} filed under a wrong class folder "
        "(planted label errors)"
    )
    yield "digits:     " + ingest(IngestConfig(sources=(str(images),), lake=lake)).line()
    ontology_file = folder / "digits.yaml"
    ontology_file.write_text(DIGITS_ONTOLOGY)
    register(load_ontology(ontology_file), lake=lake)
    yield (
        "labels:     "
        + import_labels(str(images), "folders", annotator="sklearn-digits", lake=lake).line()
    )
    approved = review("approve", reviewer="demo", lake=lake, where="annotator = 'sklearn-digits'")
    yield "review:     " + approved.line()
    yield "curate:     " + curate(CurateConfig(), lake=lake).line()
    yield "\n".join(["split:", *split("digits", "train=0.8,val=0.2", lake=lake).lines()])
    summary = train(
        TrainConfig(split="digits", ontology="digits", epochs=3, image_size=32), lake=lake
    )
    model = Lake(lake).table("models", to="polars").filter(model_id=summary.run_id).to_dicts()[0]
    for e in json.loads(model["epochs"]):
        yield (
            f"epoch {e['epoch']}:    train accuracy {e['train_accuracy']:.3f}, "
            f"val accuracy {e['val_accuracy']:.3f} ({e['seconds']:.1f} s)"
        )
    yield "train:      " + summary.line()
    yield from check_digits(summary.model_id, set(planted), lake)


def check_digits(model_id: str, planted: set[str], lake: str | None) -> Iterator[str]:
    """Evaluates the model per slice, then looks for the planted label errors."""
    slices = ("source_folder", "contrast", "brightness")
    yield (
        "evaluate:   "
        + evaluate(
            EvaluateConfig(model=model_id, split="digits", on="val", slice_by=slices), lake=lake
        ).line()
    )
    found = find_label_issues(
        LabelIssuesConfig(split="digits", ontology="digits", folds=2, epochs=3), lake=lake
    )
    yield "issues:     " + found.line()
    ranked = Lake(lake).table("label_issues", to="polars").filter(run_id=found.run_id)
    top = set(ranked.filter(ranked["rank"] < 2 * len(planted))["asset_id"].to_list())
    yield (
        f"planted:    {len(top & planted)} of the {len(planted)} planted label errors are in "
        f"the top {2 * len(planted)} of the ranking ({100 * len(top & planted) / len(planted):.0f}"
        " %; goal >= 70 %)"
    )


def loop_digits(folder: Path, lake: str | None, rounds: int = LOOP_ROUNDS) -> Iterator[str]:
    """Active learning on the digits: a new labelling project, answered by an oracle.

    The flow of a user who starts labelling from nothing: a new ontology (the same ten
    classes), a split whose val/test side is the fixed evaluation set, and rounds of
    `smartray loop`. The digits' true class folders (written again, without the planted
    errors) play the annotators: each batch is answered through the import path. The
    first round picks by k-center over the image descriptors (no label yet); each later
    one trains on what came back, evaluates, and picks the next batch by margin.
    """
    oracle = folder / "oracle"
    if len(list(oracle.glob("*/*.png"))) != digits.COUNT:
        shutil.rmtree(oracle, ignore_errors=True)
        digits.write_pngs(oracle)
    ontology_file = folder / "digits-loop.yaml"
    ontology_file.write_text(DIGITS_ONTOLOGY.replace("name: digits", f"name: {LOOP_EXPERIMENT}"))
    register(load_ontology(ontology_file), lake=lake)
    summary = split(LOOP_EXPERIMENT, "train=0.7,val=0.15,test=0.15", lake=lake, seed=1)
    yield "split:      " + summary.lines()[-1]
    out = _loop_out(folder)
    config = LoopConfig(
        experiment=LOOP_EXPERIMENT,
        split=LOOP_EXPERIMENT,
        ontology=LOOP_EXPERIMENT,
        budget=LOOP_BUDGET,
        rounds=rounds,
        oracle=str(oracle),
        oracle_format="folders",
        where=f"source_uri LIKE '%/{folder.name}/images/%'",  # the digits, not the photos
        epochs=10,
        batch_size=16,
        seed=0,
        out=str(out),
    )
    done = len(_loop_rounds(lake))  # an earlier demo's rounds count
    if done >= rounds:
        yield f"loop:       experiment {LOOP_EXPERIMENT!r} has its rounds (run by an earlier demo)"
    else:
        for line in loop(config.model_copy(update={"rounds": rounds - done}), lake=lake):
            yield "loop " + line


def loop_summary(folder: Path, lake: str | None) -> Iterator[str]:
    """The demo's last lines: the loop's report, then one line per round."""
    report = _loop_out(folder) / LOOP_EXPERIMENT / "report.html"
    yield f"\nactive learning on the digits (`smartray loop`), report: {report}"
    for row in _loop_rounds(lake):
        yield "  " + round_line(row)


def _loop_out(folder: Path) -> Path:
    return folder.parent / f"{folder.name}-loop"


def _loop_rounds(lake: str | None) -> list[dict[str, Any]]:
    """The demo experiment's `al_rounds` rows, in round order."""
    lk = Lake(lake)
    if not lk.exists("al_rounds"):
        return []
    rows = lk.table("al_rounds").to_pylist()
    return sorted((r for r in rows if r["experiment"] == LOOP_EXPERIMENT), key=lambda r: r["round"])
