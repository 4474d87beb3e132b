"""Active-learning selection on real handwritten digits: score the pool, pick batches,
select a recorded round again, and pre-annotate a batch in the real Label Studio."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from jobs import curate as curate_job
from jobs import export as export_job
from jobs import import_labels as import_job
from jobs import ingest as ingest_job
from jobs import ontology as ontology_job
from jobs import review as review_job
from jobs import score as score_job
from jobs import select as select_job
from jobs import split as split_job
from jobs import train as train_job
from smartray import Lake
from smartray.sanitize.cv import cv2
from smartray.testing import digits

N, LABELLED = 300, 100
COPIED = (200, 201, 202, 0)  # near-duplicates are made of these digits (0 is labelled)


@pytest.fixture(scope="module")
def experiment(ray_session, tmp_path_factory):
    """300 digits, 100 of them labelled, near-copies of 4, a model of experiment `al`.

    The pool is scored without Monte-Carlo passes: BALD must be refused until `score
    --mc-dropout` runs.
    """
    root = tmp_path_factory.mktemp("digits")
    paths = digits.write_pngs(root, N)
    labelled = tmp_path_factory.mktemp("labelled")
    for p in paths[:LABELLED]:
        (labelled / p.parent.name).mkdir(exist_ok=True)
        shutil.copy(p, labelled / p.parent.name / p.name)
    for k in COPIED:  # 3 gray levels brighter: a near-duplicate, not the same bytes
        img = cv2.imread(str(paths[k]), cv2.IMREAD_GRAYSCALE).astype(np.int16)
        copy = np.clip(img + 3, 0, 255).astype(np.uint8)
        cv2.imwrite(str(paths[k].with_name(paths[k].stem + "-copy.png")), copy)
    lake = str(tmp_path_factory.mktemp("select") / "lake")
    ingest_job.main([str(root), "--lake", lake, "--no-blur"])
    curate_job.main(["--lake", lake])
    ontology_job.main(["add", "schemas/ontologies/digits.yaml", "--lake", lake])
    import_job.main([str(labelled), "--format", "folders", "--annotator", "sklearn",
                     "--lake", lake])  # fmt: skip
    review_job.main(["--approve", "--reviewer", "lead", "--lake", lake,
                     "--where", "annotator = 'sklearn'"])  # fmt: skip
    split_job.main(["--lake", lake, "--split", "main", "--ratios", "train=0.7,val=0.3"])
    train_job.main(["--lake", lake, "--split", "main", "--experiment", "al", "--epochs", "2",
                    "--image-size", "16", "--batch-size", "32", "--lr", "0.01"])  # fmt: skip
    score_job.main(["--lake", lake, "--experiment", "al"])
    return lake


def rows_of(lake, table, **equal):
    return [r for r in Lake(lake).table(table).to_pylist()
            if all(r[k] == v for k, v in equal.items())]  # fmt: skip


def groups_of(lake):
    return {r["asset_id"]: r["dup_group"] for r in Lake(lake).table("dup_groups").to_pylist()}


def select(lake, *argv, capsys):
    capsys.readouterr()
    select_job.main(["--lake", lake, "--experiment", "al", *argv])
    return capsys.readouterr().out


def test_score_then_margin_picks_the_smallest_margins_and_a_round_replays(experiment, capsys):
    lake = experiment
    with pytest.raises(SystemExit) as e:  # scored without MC passes: no BALD
        select(lake, "--budget", "5", "--strategy", "bald", capsys=capsys)
    assert e.value.code == 2
    assert "BALD needs Monte-Carlo-dropout scores" in capsys.readouterr().err
    score_job.main(["--lake", lake, "--experiment", "al", "--mc-dropout", "4"])
    out = capsys.readouterr().out
    assert "with 4 MC-dropout passes" in out
    (model,) = Lake(lake).table("models", columns=["model_id"]).to_pylist()
    predictions = rows_of(lake, "predictions", model_id=model["model_id"])
    assert len({p["asset_id"] for p in predictions}) == len(predictions)  # rescored, not doubled
    assert {p["mc_passes"] for p in predictions} == {4}
    # every file on disk is one some version references: no uncommitted part was left
    versions = range(Lake(lake).version("predictions") + 1)
    logged = {
        Path(f).name for v in versions for f in Lake(lake).delta("predictions", v).file_uris()
    }
    assert {f.name for f in Path(lake, "predictions").rglob("*.parquet")} == logged
    assert all(p["mutual_info"] >= 0 for p in predictions)
    assert max(p["mutual_info"] for p in predictions) > 0
    labelled = {r["asset_id"] for r in Lake(lake).table("labels").to_pylist()}
    held = {r["asset_id"] for r in rows_of(lake, "splits", split_name="main")
            if r["split"] != "train"}  # fmt: skip
    scored = {p["asset_id"] for p in predictions}
    assert not scored & held  # val stays out of the pool: learning curves stay honest

    out = select(lake, "--budget", "10", "--strategy", "margin", "--seed", "3", capsys=capsys)
    assert "round 1: 10 of a pool of" in out
    batch = sorted(rows_of(lake, "batches", experiment="al", round=1), key=lambda r: r["rank"])
    assert [r["rank"] for r in batch] == list(range(10))
    margin = {p["asset_id"]: p["margin"] for p in predictions}
    picked = {r["asset_id"] for r in batch}
    assert not picked & labelled
    group = groups_of(lake)
    blocked = {group[a] for a in labelled} | {group[a] for a in picked}
    # every pool asset with a smaller margin than a pick was left out for its group
    worst = max(margin[a] for a in picked)
    smaller = [a for a in scored - labelled - picked if margin[a] < worst]
    assert all(group[a] in blocked for a in smaller)
    assert [r["margin"] for r in batch] == sorted(r["margin"] for r in batch)
    assert all(r["model_id"] == model["model_id"] and r["seed"] == 3 for r in batch)

    select(lake, "--budget", "10", "--strategy", "kcenter", capsys=capsys)  # round 2
    select(lake, "--budget", "10", "--strategy", "bald", capsys=capsys)  # round 3
    second = rows_of(lake, "batches", experiment="al", round=2)
    assert not {r["asset_id"] for r in second} & picked  # picked before: not again
    for round_no in (1, 2, 3):
        out = select(lake, "--budget", "1", "--replay", str(round_no), capsys=capsys)
        assert f"round {round_no} selected again" in out
        assert "10 ids, identical to the recorded batch" in out
    assert len(rows_of(lake, "batches", experiment="al")) == 30  # a replay writes nothing


def test_a_duplicate_group_gives_one_pick_and_a_labelled_ones_copy_none(experiment, capsys):
    """Cold start (no model in the experiment): the whole pool, one asset per group."""
    lake = experiment
    argv = ["--lake", lake, "--experiment", "cold", "--split", "main", "--strategy", "random"]
    with pytest.raises(SystemExit) as e:
        select_job.main([*argv, "--budget", "100000"])
    assert e.value.code == 2
    (components,) = re.findall(r"in (\d+) duplicate group", capsys.readouterr().err)
    select_job.main([*argv, "--budget", components])
    assert "no model (cold start)" in capsys.readouterr().out
    picks = [r["asset_id"] for r in rows_of(lake, "batches", experiment="cold")]
    assert len(picks) == int(components)
    group = groups_of(lake)
    assert len({group[a] for a in picks}) == len(picks)
    pairs = [g for g in set(group.values()) if list(group.values()).count(g) == 2]
    assert len(pairs) == len(COPIED)
    labelled = {r["asset_id"] for r in Lake(lake).table("labels").to_pylist()}
    for g in pairs:
        members = {a for a, x in group.items() if x == g}
        if members & labelled:
            assert not members & set(picks)  # the copy of a labelled digit is never picked
    # k-center over the stored 32x32 descriptors at cold start
    select_job.main(["--lake", lake, "--experiment", "cold-kc", "--split", "main",
                     "--strategy", "kcenter", "--budget", "5"])  # fmt: skip
    assert len(rows_of(lake, "batches", experiment="cold-kc")) == 5


def test_a_batch_pre_annotated_in_label_studio_comes_back_as_labels(
    experiment, label_studio, tmp_path, capsys
):
    """Export round 1 with the model's guesses; accept two and change one in Label
    Studio; its export imported and approved: exactly those three classes."""
    lake = experiment
    out = tmp_path / "round1"
    export_job.main(["--lake", lake, "--format", "labelstudio", "--batch", "al:1",
                     "--out", str(out), "--image-url-prefix", "/data/local-files/?d="])  # fmt: skip
    assert "10 pre-annotation(s) from model" in capsys.readouterr().out
    client = label_studio.client()
    project = client.create_project("al round 1", (out / "labeling_config.xml").read_text())
    assert client.import_tasks(project, json.loads((out / "tasks.json").read_text())) == 10
    tasks = client.list_tasks(project)
    (model,) = Lake(lake).table("models", columns=["model_id"]).to_pylist()
    answered = {}
    for k, task in enumerate(tasks[:3]):
        (guess,) = [p for p in task["predictions"] if p["model_version"] == model["model_id"]]
        assert 0 < guess["score"] <= 1
        result = guess["result"]
        if k == 2:  # the annotator corrects the model
            wrong = result[0]["value"]["choices"][0]
            other = "one" if wrong != "one" else "two"
            result = [{**result[0], "value": {"choices": [other]}}]
        client.create_annotation(task["id"], result)
        answered[task["data"]["asset_id"]] = result[0]["value"]["choices"][0]
    path = tmp_path / "from-label-studio.json"
    path.write_text(json.dumps(client.export(project)))
    import_job.main([str(path), "--format", "labelstudio", "--annotator", "al-annotator",
                     "--lake", lake])  # fmt: skip
    review_job.main(["--approve", "--reviewer", "lead", "--lake", lake,
                     "--where", "annotator = 'al-annotator'"])  # fmt: skip
    got = {
        r["asset_id"]: r["class_name"] for r in rows_of(lake, "labels", annotator="al-annotator")
    }
    assert got == answered


def test_bad_requests_exit_2_and_write_no_batch(experiment, capsys, tmp_path):
    """Last: it adds version 2 of the ontology, which the model did not learn."""
    lake = experiment
    before = Lake(lake).version("batches")
    onto = Path("schemas/ontologies/digits.yaml").read_text().replace("version: 1", "version: 2")
    (tmp_path / "digits-v2.yaml").write_text(onto + "  - {id: 10, name: ten}\n")
    for argv, message in [
        (["--budget", "10", "--strategy", "magic"], "choose one of random, least-confidence"),
        (["--budget", "10", "--model", "train-19700101T000000-00000000"], "unknown model"),
        (["--budget", "100000"], "lower the budget"),
        (["--budget", "5", "--where", "asset_id = 'none'"], "the pool is empty"),
        (["--budget", "5", "--experiment", "new", "--split", "main", "--strategy", "margin"],
         "has no model to score the pool"),
        (["--budget", "5", "--weights", "margin=x"], "write NAME=STRENGTH"),
        (["--budget", "5", "--strategy", "weighted", "--weights", "margin=nan"], "finite number"),
    ]:  # fmt: skip
        with pytest.raises(SystemExit) as e:
            select_job.main(["--lake", lake, "--experiment", "al", *argv])
        assert e.value.code == 2, argv
        assert message in capsys.readouterr().err, argv
    ontology_job.main(["add", str(tmp_path / "digits-v2.yaml"), "--lake", lake])
    for job, argv in [(select_job, ["--budget", "5"]), (score_job, [])]:
        with pytest.raises(SystemExit) as e:
            job.main(["--lake", lake, "--experiment", "al", *argv])
        assert e.value.code == 2
        assert "its latest version is v2" in capsys.readouterr().err
    assert Lake(lake).version("batches") == before
