"""`smartray loop` on real handwritten digits: rounds answered by an oracle and by people,
fine-tuning, a round selected again from its `al_rounds` row, the report in Chromium, and
the inputs it refuses with nothing written."""

import json
import shutil
from pathlib import Path

import pytest

from jobs import ingest as ingest_job
from jobs import loop as loop_job
from jobs import ontology as ontology_job
from jobs import report as report_job
from jobs import split as split_job
from smartray import Lake
from smartray.testing import digits
from tests.integration.browser import BrowserError, check_page, chromium

N = 240
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "test-artifacts" / "loop-report.png"
TRAIN = ["--epochs", "2", "--image-size", "16", "--batch-size", "8", "--lr", "0.01"]


@pytest.fixture(scope="module")
def digits_lake(ray_session, tmp_path_factory):
    """240 unlabelled digits split train/val/test; their class folders are the truth."""
    root = tmp_path_factory.mktemp("digits")
    paths = digits.write_pngs(root, N)
    lake = str(tmp_path_factory.mktemp("loop") / "lake")
    ingest_job.main([str(root), "--lake", lake, "--no-blur"])
    ontology_job.main(["add", "schemas/ontologies/digits.yaml", "--lake", lake])
    split_job.main(["--lake", lake, "--split", "main", "--ratios", "train=0.6,val=0.2,test=0.2",
                    "--no-groups"])  # fmt: skip
    truth = {_asset(lake, p): p for p in paths}
    return lake, root, truth, tmp_path_factory.mktemp("out")


def _asset(lake, path):
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def loop(lake, out, *argv, capsys):
    capsys.readouterr()
    loop_job.main(["--lake", lake, "--experiment", "dg", "--split", "main", "--out", str(out),
                   "--budget", "12", "--seed", "3", *argv])  # fmt: skip
    return capsys.readouterr().out


def rounds(lake):
    rows = Lake(lake).table("al_rounds").to_pylist()
    return {r["round"]: r for r in rows if r["experiment"] == "dg"}


def batch(lake, round_no):
    rows = [r for r in Lake(lake).table("batches").to_pylist()
            if r["experiment"] == "dg" and r["round"] == round_no]  # fmt: skip
    return [r["asset_id"] for r in sorted(rows, key=lambda r: r["rank"])]


def test_rounds_by_oracle_and_people_replay_and_show_in_chromium(digits_lake, capsys, tmp_path):
    lake, root, truth, out = digits_lake
    sides = {}
    for r in Lake(lake).table("splits").to_pylist():
        sides.setdefault(r["split"], set()).add(r["asset_id"])
    held = sides["val"] | sides["test"]

    # round 1: no label yet, so the oracle labels val/test and k-center picks at cold start
    text = loop(lake, out, "--rounds", "1", "--oracle", str(root), "--oracle-format",
                "folders", capsys=capsys)  # fmt: skip
    first = rounds(lake)[1]
    assert first["model_id"] is None
    assert first["strategy"] == "kcenter"
    assert first["labelled"] == 0
    assert first["selected_ids"] == batch(lake, 1)
    assert len(first["selected_ids"]) == 12
    assert set(first["selected_ids"]) <= sides["train"]
    labels = Lake(lake).table("labels").to_pylist()
    assert {r["asset_id"] for r in labels} == held
    assert {r["approved_by"] for r in labels} == {"oracle"}
    assert all(r["class_name"] == truth[r["asset_id"]].parent.name for r in labels)
    assert "round 1: 0 train labels, no model yet (cold start); picked 12" in text

    # round 2: people answered 8 of the 12; the loop approves them (--approve all)
    answered, unanswered = first["selected_ids"][:8], first["selected_ids"][8:]
    answers = tmp_path / "answers"
    for aid in answered:
        (answers / truth[aid].parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(truth[aid], answers / truth[aid].parent.name / truth[aid].name)
    text = loop(lake, out, "--labels", str(answers), "--format", "folders", "--approve", "all",
                *TRAIN, capsys=capsys)  # fmt: skip
    second = rounds(lake)[2]
    assert (second["asked"], second["answered"]) == (12, 8)
    assert (second["imported"], second["approved"], second["labelled"]) == (8, 8, 8)
    assert second["model_id"] is not None
    assert second["val_n"] == len(sides["val"])
    assert second["test_n"] == len(sides["test"])
    assert 0 <= second["val_accuracy"] <= 1
    assert second["selected_ids"] == batch(lake, 2)
    assert not set(second["selected_ids"]) & set(answered)
    runs = json.loads(second["runs"])
    assert set(runs) >= {"import", "review", "train", "evaluate_val", "evaluate_test", "score",
                         "select", "export"}  # fmt: skip
    recorded = {r["run_id"]: r["job"] for r in Lake(lake).table("runs").to_pylist()}
    assert recorded[runs["train"]] == "train"
    assert recorded[runs["select"]] == "select"
    # the 4 unanswered are in the pool again: the round's score run predicted them
    scored = {r["asset_id"] for r in Lake(lake).table("predictions").to_pylist()
              if r["run_id"] == runs["score"]}  # fmt: skip
    assert set(unanswered) <= scored
    assert set(answered) <= scored  # k-center's centers
    assert not held & scored
    tasks = json.loads((out / "dg" / "round-2" / "tasks.json").read_text())
    assert [t["data"]["asset_id"] for t in tasks] == second["selected_ids"]
    assert all(t["predictions"][0]["model_version"] == second["model_id"] for t in tasks)

    # round 3: the oracle answers batch 2 only; the model starts from round 2's
    loop(lake, out, "--oracle", str(root), "--oracle-format", "folders", "--fine-tune", *TRAIN,
         capsys=capsys)  # fmt: skip
    third = rounds(lake)[3]
    assert third["init_model"] == second["model_id"]
    assert (third["asked"], third["answered"], third["labelled"]) == (12, 12, 20)
    oracle = [r for r in Lake(lake).table("label_events").to_pylist()
              if r["annotator"] == "oracle" and r["event"] == "annotation"]  # fmt: skip
    assert {r["asset_id"] for r in oracle} == held | set(second["selected_ids"])

    # each round selects the same ids again from its al_rounds row
    for n in (1, 2, 3):
        capsys.readouterr()
        loop_job.main(["--lake", lake, "--experiment", "dg", "--replay", str(n)])
        assert f"round {n} selected again" in capsys.readouterr().out

    # the report: the batch of round 3, every image and plot drawn, nothing fetched
    try:
        chromium()
    except BrowserError as e:  # never a skip: `make test` installs it
        pytest.fail(str(e))
    SCREENSHOT.unlink(missing_ok=True)
    page = check_page(out / "dg" / "report.html", SCREENSHOT, timeout=60)
    assert page.batch_images == page.batch_loaded == 12
    assert page.images == page.images_loaded
    assert all(page.plots.values())
    assert "plot-learning-curve" in page.plots
    assert page.remote_requests == []
    assert SCREENSHOT.read_bytes().startswith(b"\x89PNG")


def versions(lake):
    lk = Lake(lake)
    names = ("label_events", "labels", "batches", "al_rounds", "models", "predictions")
    return {n: lk.version(n) for n in names if lk.exists(n)}


def refused(argv, capsys, job=loop_job):
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        job.main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


def test_bad_inputs_exit_2_with_nothing_written(digits_lake, capsys, tmp_path):
    lake, root, truth, out = digits_lake
    common = ["--lake", lake, "--experiment", "dg", "--split", "main", "--out", str(out)]
    if not Lake(lake).exists("al_rounds"):  # run on its own: one cold-start round first
        loop(lake, out, "--oracle", str(root), "--oracle-format", "folders", capsys=capsys)
    before = versions(lake)
    open_batch = set(batch(lake, max(rounds(lake))))

    html = tmp_path / "r.html"
    err = refused(["--lake", lake, "--experiment", "nope", "--out", str(html)], capsys,
                  job=report_job)  # fmt: skip
    assert "nope" in err
    assert "dg" in err
    assert not html.exists()

    stranger = tmp_path / "oracle"  # a label source that holds none of the open batch
    other = next(a for a in truth if a not in open_batch)
    (stranger / truth[other].parent.name).mkdir(parents=True)
    shutil.copy(truth[other], stranger / truth[other].parent.name)
    err = refused([*common, "--oracle", str(stranger), "--oracle-format", "folders"], capsys)
    assert "answers none of the 12 asset(s) of batch dg:" in err

    v2 = tmp_path / "digits-v2.yaml"  # "nine" renamed: a file made for v2
    v1 = Path("schemas/ontologies/digits.yaml").read_text()
    v2.write_text(v1.replace("version: 1", "version: 2").replace("name: nine", "name: niner"))
    ontology_job.main(["add", str(v2), "--lake", lake])
    before["ontologies"] = Lake(lake).version("ontologies")
    answers = tmp_path / "answers"
    for aid in sorted(open_batch)[:2]:
        (answers / "niner").mkdir(parents=True, exist_ok=True)
        shutil.copy(truth[aid], answers / "niner")
    err = refused([*common, "--labels", str(answers), "--format", "folders"], capsys)
    assert "class(es) ['niner'] are not in ontology 'digits' v1" in err
    assert "v2" in err

    err = refused([*common, "--rounds", "2"], capsys)
    assert "needs --oracle" in err
    err = refused([*common, "--labels", str(answers)], capsys)
    assert "--labels needs --format" in err
    assert versions(lake) | {"ontologies": before["ontologies"]} == before
