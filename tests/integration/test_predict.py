"""Predictions, evaluation and label issues on real handwritten digits: a model points
back at the data."""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from jobs import evaluate as evaluate_job
from jobs import find_label_issues as find_job
from jobs import predict as predict_job
from jobs import review as review_job
from jobs import train as train_job
from smartray import Lake
from smartray.testing import digits
from tests.integration.test_train import duckdb_rows, label_and_split

N = 300


@pytest.fixture(scope="module")
def trained(ray_session, tmp_path_factory):
    """A digits lake split 70/30 and a small CNN trained on it for 2 epochs."""
    root = tmp_path_factory.mktemp("digits")
    digits.write_pngs(root, N)
    lake_dir = str(tmp_path_factory.mktemp("predict-lake") / "lake")
    label_and_split(root, lake_dir)
    train_job.main(["--lake", lake_dir, "--split", "main", "--epochs", "2",
                    "--image-size", "16", "--batch-size", "32", "--lr", "0.01"])  # fmt: skip
    (model,) = Lake(lake_dir).table("models", columns=["model_id"]).to_pylist()
    return lake_dir, model["model_id"]


def side(lake, name):
    rows = lake.table("splits").to_pylist()
    return {r["asset_id"] for r in rows if r["split_name"] == "main" and r["split"] == name}


def test_predict_scores_each_pair_once_and_latest_names_the_newest_model(trained, capsys):
    lake_dir, model_id = trained
    lake = Lake(lake_dir)
    val = side(lake, "val")
    predict_job.main(["--lake", lake_dir, "--model", "latest", "--split", "main", "--side", "val"])
    assert f"model {model_id} on {len(val)} asset(s): {len(val)} predicted, 0 already" in (
        capsys.readouterr().out
    )
    predict_job.main(["--lake", lake_dir, "--model", model_id, "--split", "main"])
    assert f"{N - len(val)} predicted, {len(val)} already predicted" in capsys.readouterr().out
    rows = lake.table("predictions").to_pylist()
    assert len(rows) == N
    assert len({r["asset_id"] for r in rows}) == N
    classes = {c["index"]: c for c in json.loads(lake.table("models").to_pylist()[0]["classes"])}
    for r in rows[:20]:
        p = np.asarray(r["probabilities"])
        assert p.shape == (10,)
        assert p.sum() == pytest.approx(1.0, abs=1e-4)
        assert r["predicted_index"] == int(p.argmax())
        assert r["predicted_class"] == classes[r["predicted_index"]]["name"]
        assert r["confidence"] == pytest.approx(p.max(), abs=1e-6)
        top2 = np.sort(p)[-2:]
        assert r["margin"] == pytest.approx(top2[1] - top2[0], abs=1e-6)
        assert len(r["embedding"]) == 128  # SmallCNN's penultimate features
        assert r["mc_passes"] is None
        assert r["mutual_info"] is None
    # Polars and DuckDB read the table as users would
    assert lake.table("predictions", to="polars").height == N
    ((count, mean_conf),) = duckdb_rows(
        f"SELECT count(*), avg(confidence) FROM delta_scan('{lake_dir}/predictions')"
    )
    assert count == N
    assert 0.1 < mean_conf <= 1.0


def test_evaluate_matches_the_predictions_and_slices_with_intervals(trained, capsys):
    lake_dir, model_id = trained
    lake = Lake(lake_dir)
    evaluate_job.main(["--lake", lake_dir, "--split", "main", "--on", "val",
                       "--slice-by", "source_folder", "--slice-by", "blur"])  # fmt: skip
    out = capsys.readouterr().out
    val = side(lake, "val")
    preds = {r["asset_id"]: r["predicted_class"] for r in lake.table("predictions").to_pylist()}
    labels = {r["asset_id"]: r["class_name"] for r in lake.table("labels").to_pylist()}
    correct = sum(preds[a] == labels[a] for a in val)
    rows = lake.table("evaluations").to_pylist()
    (overall,) = [r for r in rows if r["slice_by"] == "all"]
    assert (overall["n"], overall["correct"]) == (len(val), correct)
    assert f"accuracy {100 * correct / len(val):.2f} %" in out
    assert overall["ci_low"] < overall["accuracy"] < overall["ci_high"]
    assert 0 <= overall["ece"] <= 1
    per_class = json.loads(overall["per_class"])
    assert sum(c["support"] for c in per_class) == len(val)
    assert np.asarray(json.loads(overall["confusion"])).trace() == correct
    folders = [r for r in rows if r["slice_by"] == "source_folder"]
    assert sorted(r["slice"] for r in folders) == sorted(digits.NAMES)  # one per class folder
    assert sum(r["n"] for r in folders) == len(val)
    assert len([r for r in rows if r["slice_by"] == "blur"]) == 4  # quartile buckets
    slices = [r for r in rows if r["slice_by"] != "all"]
    worst = min(slices, key=lambda r: (not r["flagged"], r["accuracy"], -r["n"]))
    assert f" {worst['slice_by']}={worst['slice']}: n {worst['n']}," in out.splitlines()[2]
    assert overall["model_id"] == model_id
    assert overall["predictions_version"] >= 1
    ((n,),) = duckdb_rows(f"SELECT count(*) FROM delta_scan('{lake_dir}/evaluations')")
    assert n == len(rows)


def test_bad_requests_exit_2_and_write_nothing(trained, capsys):
    lake_dir, _ = trained
    lake = Lake(lake_dir)
    before = {t: lake.version(t) for t in ("predictions", "evaluations")}
    (model,) = lake.table("models").to_pylist()
    weights = Path(f"{model['checkpoint_uri']}/model.safetensors")
    original = weights.read_bytes()
    tampered = bytearray(original)
    tampered[-1] ^= 1  # one bit of one weight
    try:
        weights.write_bytes(bytes(tampered))
        for job, argv, message in [
            (predict_job, ["--model", "train-19700101T000000-00000000"], "unknown model"),
            (predict_job, ["--model", "latest", "--experiment", "nope"], "'nope' has no model"),
            (predict_job, ["--split", "nope"], "no split of that name"),
            (predict_job, ["--where", "bogus > 1"], "unknown column(s) bogus"),
            (predict_job, ["--side", "val"], "give --split NAME too"),
            (evaluate_job, ["--split", "main", "--on", "test"], "has sides ['train', 'val']"),
            (evaluate_job, ["--split", "main", "--slice-by", "nope"], "available: media_type"),
            (predict_job, ["--split", "main"], "model.safetensors does not match its sha256"),
            (evaluate_job, ["--split", "main"], "model.safetensors does not match its sha256"),
        ]:
            with pytest.raises(SystemExit) as e:
                job.main(["--lake", lake_dir, *argv])
            assert e.value.code == 2, argv
            assert message in capsys.readouterr().err, argv
    finally:
        weights.write_bytes(original)
    assert {t: lake.version(t) for t in before} == before


@pytest.fixture(scope="module")
def noisy(ray_session, tmp_path_factory):
    """300 digits, 15 of them (5 %) filed under a wrong class folder: planted label errors."""
    root = tmp_path_factory.mktemp("noisy-digits")
    flipped = set(digits.plant_flips(digits.write_pngs(root, N), 15))
    lake_dir = str(tmp_path_factory.mktemp("noisy-lake") / "lake")
    label_and_split(root, lake_dir)
    return lake_dir, flipped


@pytest.fixture(scope="module")
def found(noisy):
    """find-label-issues run once on the noisy lake (2 folds); its printed summary."""
    lake_dir, flipped = noisy
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        find_job.main(["--lake", lake_dir, "--split", "main", "--folds", "2", "--epochs", "4",
                       "--image-size", "16", "--batch-size", "32", "--lr", "0.01"])  # fmt: skip
    return lake_dir, flipped, out.getvalue()


def test_planted_label_errors_are_found_reviewed_and_leave_the_labels(found, capsys):
    lake_dir, flipped, out = found
    lake = Lake(lake_dir)
    issues = sorted(lake.table("label_issues").to_pylist(), key=lambda r: r["rank"])
    assert "300 labelled asset(s) in 2 folds" in out
    assert f"{len(issues)} label issue(s)" in out
    top = {r["asset_id"] for r in issues[: 2 * len(flipped)]}
    assert len(top & flipped) >= 7, (len(top & flipped), len(issues))  # 11 of 15 when measured
    models = {r["model_id"] for r in lake.table("models").to_pylist()}
    assert len(models) == 2
    assert {r["fold_model"] for r in issues} <= models
    for r in issues[:5]:  # scored by the model of the fold that held it out
        splits = lake.table("splits").to_pylist()
        fold = f"main.fold{r['fold']}of2"
        assert {s["split"] for s in splits if s["asset_id"] == r["asset_id"]
                and s["split_name"] == fold} == {"val"}  # fmt: skip
        assert r["given_class"] != r["suggested_class"]
    # the queue: review the top 5, and they leave `labels`
    labels_before = {r["label_id"] for r in lake.table("labels").to_pylist()}
    review_job.main(["--lake", lake_dir, "--reopen", "--from-label-issues", "--top", "5",
                     "--reviewer", "lead"])  # fmt: skip
    labels_after = {r["label_id"] for r in lake.table("labels").to_pylist()}
    assert labels_before - labels_after == {r["label_id"] for r in issues[:5]}
    assert len(labels_after) == len(labels_before) - 5
    # a wrong combination is refused before anything is read
    with pytest.raises(SystemExit) as e:
        review_job.main(["--lake", lake_dir, "--reopen", "--from-label-issues", "--where",
                         "1 = 1", "--reviewer", "lead"])  # fmt: skip
    assert e.value.code == 2
    # a fold model has scored only its held-out fold: the rest needs actors the local Ray
    # cannot give, and waiting is bounded
    fold_model = ["--model", "latest", "--experiment", "label-issues:main", "--split", "main"]
    for argv, message in [
        (["--use-gpu", "--resource-wait-s", "1"], "need 1 GPU (the cluster has 0)"),
        (["--cpus-per-actor", "3", "--resource-wait-s", "0"], "need 3 CPU (the cluster has 2)"),
    ]:
        with pytest.raises(SystemExit) as e:
            predict_job.main(["--lake", lake_dir, *fold_model, *argv])
        assert e.value.code == 2, argv
        assert message in capsys.readouterr().err, argv
    before = lake.version("label_issues")
    for folds, message in [("40", "above the smallest class count"), ("1", "folds")]:
        with pytest.raises(SystemExit) as e:
            find_job.main(["--lake", lake_dir, "--split", "main", "--folds", folds])
        assert e.value.code == 2
        assert message in capsys.readouterr().err
    assert lake.version("label_issues") == before


def test_the_notebook_shows_predictions_evaluations_and_label_issues(found, monkeypatch, capsys):
    from tests.integration.test_notebook import run_notebook, shown

    lake_dir, _, _ = found
    evaluate_job.main(
        [
            "--lake",
            lake_dir,
            "--split",
            "main",
            "--slice-by",
            "source_folder",
            "--experiment",
            "label-issues:main",
        ]
    )  # its models are fold models
    capsys.readouterr()
    printed, tables, images = shown(run_notebook(lake_dir, monkeypatch))
    lake = Lake(lake_dir)
    assert "models: yes; predictions: yes; evaluations: yes; label_issues: yes" in printed
    n = lake.table("predictions", columns=["asset_id"]).num_rows
    assert f"predictions rows: DuckDB {n}, Polars {n}" in printed
    issues = lake.table("label_issues", columns=["run_id"]).num_rows
    assert f": {issues}\n" in printed.split("label issues of ")[1]
    assert "source_folder" in tables
    assert "flagged" in tables
    assert len(images) == 3  # thumbnails, quality histograms, the label issues
