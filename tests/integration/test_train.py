"""Training on Ray Train from a labelled lake: real handwritten digits, a few hundred."""

import json

import pytest

from jobs import import_labels as import_job
from jobs import ingest as ingest_job
from jobs import ontology as ontology_job
from jobs import review as review_job
from jobs import split as split_job
from jobs import train as train_job
from smartray import Lake
from smartray.testing import digits

N = 300


def duckdb_rows(sql):
    """Rows of `sql` in DuckDB with the delta extension from its PyPI wheel (no download)."""
    import importlib.resources

    import duckdb

    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    wheel = importlib.resources.files("duckdb_extension_delta")
    con.execute(
        f"LOAD '{wheel / 'extensions' / f'v{duckdb.__version__}' / 'delta.duckdb_extension'}'"
    )
    return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def digits_lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    digits.write_pngs(root, N)
    lake_dir = str(tmp_path_factory.mktemp("digits-lake") / "lake")
    label_and_split(root, lake_dir)
    return lake_dir


def label_and_split(root, lake_uri):
    """A user's flow: ingest the class folders, label from them, approve, split 70/30."""
    ingest_job.main([str(root), "--lake", lake_uri, "--no-blur"])
    ontology_job.main(["add", "schemas/ontologies/digits.yaml", "--lake", lake_uri])
    import_job.main([str(root), "--format", "folders", "--annotator", "sklearn",
                     "--lake", lake_uri])  # fmt: skip
    review_job.main(["--approve", "--reviewer", "lead", "--lake", lake_uri,
                     "--where", "annotator = 'sklearn'"])  # fmt: skip
    split_job.main(["--lake", lake_uri, "--split", "main", "--no-groups",
                    "--ratios", "train=0.7,val=0.3"])  # fmt: skip


def test_train_records_a_model_and_a_worker_killed_mid_epoch_resumes(
    ray_session, digits_lake, tmp_path, capsys
):
    from smartray.testing import train_faults
    from smartray.train import checkpoint

    marker = tmp_path / "died"
    # ~210 training digits in batches of 32: 7 a epoch; the 10th batch is in epoch 1
    train_faults.plan_path().write_text(json.dumps({"after_batches": 10, "marker": str(marker)}))
    try:
        train_job.main(["--lake", digits_lake, "--split", "main", "--epochs", "3",
                        "--image-size", "16", "--batch-size", "32", "--lr", "0.01",
                        "--model", "smartray.testing.train_faults:dies_once"])  # fmt: skip
    finally:
        train_faults.plan_path().unlink()
    assert marker.exists()  # the worker did die, in epoch 1
    out = capsys.readouterr().out
    lake = Lake(digits_lake)
    (model,) = lake.table("models").to_pylist()
    assert f"train {model['model_id']}: model {model['model_id']}," in out
    assert (model["ontology"], model["ontology_version"]) == ("digits", 1)
    assert model["assets_version"] == lake.version("assets")
    assert model["labels_version"] == lake.version("labels")
    assert model["train_assets"] + model["val_assets"] == N
    epochs = json.loads(model["epochs"])
    assert [e["epoch"] for e in epochs] == [0, 1, 2]
    assert [e["resumed"] for e in epochs] == [False, True, False]
    steps = [e["optimizer_steps"] for e in epochs]
    # the optimizer's state came back with the checkpoint: its step count goes on
    assert steps == [steps[0], 2 * steps[0], 3 * steps[0]]
    assert 5 <= steps[0] <= 9  # 199-231 training digits
    assert model["best_val_accuracy"] == max(e["val_accuracy"] for e in epochs)
    assert model["best_val_accuracy"] > 0.5  # ten classes: chance is 0.1
    classes = json.loads(model["classes"])
    assert [c["name"] for c in classes][:3] == ["zero", "one", "two"]
    checkpoints = json.loads(model["checkpoints"])
    assert [c["epoch"] for c in checkpoints] == [0, 1, 2]
    best = next(c for c in checkpoints if c["epoch"] == model["best_epoch"])
    assert best["uri"] == model["checkpoint_uri"]
    checkpoint.verify(best["uri"], json.loads(model["checkpoint_sha256"]))
    assert duckdb_rows(f"SELECT model_id, best_epoch FROM delta_scan('{digits_lake}/models')") == [
        (model["model_id"], model["best_epoch"])
    ]
    polars = lake.table("models", columns=["model_id", "best_val_accuracy"], to="polars")
    assert polars.row(0) == (model["model_id"], model["best_val_accuracy"])
    runs = lake.table("runs", to="polars").filter(job="train").to_dicts()
    assert json.loads(runs[0]["input_versions"])["assets"] == model["assets_version"]


def test_bad_training_requests_exit_2_and_write_nothing(ray_session, digits_lake, capsys):
    lake = Lake(digits_lake)
    before = lake.version("models")
    for argv, message in [
        (["--split", "nope"], "no split named 'nope'"),
        (["--split", "main", "--model", "vgg"], "choose small-cnn or resnet18"),
        (["--split", "main", "--init-weights", "/no/such.safetensors"], "No such file"),
        (["--split", "main", "--ontology-version", "3"], "has no v3"),
        (["--split", "main", "--use-gpu", "--gpu-wait-s", "1"], "the cluster has 0 GPU(s)"),
        (["--resume", "train-19700101T000000-00000000"], "unknown model"),
        ([], "--split NAME"),
    ]:
        with pytest.raises(SystemExit) as e:
            train_job.main(["--lake", digits_lake, *argv])
        assert e.value.code == 2
        assert message in capsys.readouterr().err
    assert lake.version("models") == before


def test_training_from_an_s3_lake_writes_its_checkpoints_there(ray_session, s3_server, tmp_path):
    import hashlib
    import uuid

    client = s3_server.client()
    bucket = f"train-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    lake_uri = f"s3://{bucket}/lake"
    digits.write_pngs(tmp_path / "src", 120)
    label_and_split(tmp_path / "src", lake_uri)
    train_job.main(["--lake", lake_uri, "--split", "main", "--epochs", "2",
                    "--image-size", "8", "--augment", "none"])  # fmt: skip
    (model,) = Lake(lake_uri).table("models").to_pylist()
    uri = model["checkpoint_uri"]
    assert uri.startswith(f"s3://{bucket}/lake/checkpoints/{model['model_id']}/")
    prefix = uri.removeprefix(f"s3://{bucket}/")
    for name, digest in json.loads(model["checkpoint_sha256"]).items():
        body = client.get_object(Bucket=bucket, Key=f"{prefix}/{name}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == digest
    assert len(json.loads(model["checkpoints"])) == 2


def test_a_stopped_run_continues_with_resume(ray_session, digits_lake, tmp_path, capsys, caplog):
    import re

    from smartray.testing import train_faults

    marker = tmp_path / "died"
    tracking = f"sqlite:///{tmp_path}/mlflow.db"  # MLflow's SQL store, as the extra installs
    train_faults.plan_path().write_text(json.dumps({"after_batches": 10, "marker": str(marker)}))
    try:
        with pytest.raises(SystemExit) as stopped:  # no restarts allowed: the run stops
            train_job.main(["--lake", digits_lake, "--split", "main", "--epochs", "2",
                            "--image-size", "16", "--batch-size", "32", "--max-failures", "0",
                            "--experiment", "stopped", "--mlflow-tracking-uri", tracking,
                            "--model", "smartray.testing.train_faults:dies_once"])  # fmt: skip
    finally:
        train_faults.plan_path().unlink()
    assert stopped.value.code == 1
    said = re.search(r"continue it with `smartray train --resume (\S+)`", caplog.text)
    assert said, caplog.text[-2000:]
    model_id = said.group(1)
    lake = Lake(digits_lake)
    if lake.exists("models"):  # nothing was committed for the stopped run
        assert model_id not in lake.table("models", columns=["model_id"])["model_id"].to_pylist()
    # the same flags are not needed: the run's own settings and pinned versions are used
    train_job.main(["--lake", digits_lake, "--resume", model_id])
    out = capsys.readouterr().out
    assert f"model {model_id}," in out
    row = lake.table("models", to="polars").filter(model_id=model_id).to_dicts()[0]
    assert row["experiment"] == "stopped"
    epochs = json.loads(row["epochs"])
    assert [(e["epoch"], e["resumed"]) for e in epochs] == [(0, False), (1, True)]
    assert epochs[1]["optimizer_steps"] == 2 * epochs[0]["optimizer_steps"]

    # the stopped run's tracking setting came back with it: the model is in MLflow
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking)
    (run,) = client.search_runs([client.get_experiment_by_name("stopped").experiment_id])
    assert f"mlflow run {run.info.run_id}" in out
    assert run.info.run_name == model_id
    assert run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert [(m.step, m.value) for m in history] == [(e["epoch"], e["val_accuracy"]) for e in epochs]
    assert run.data.params["split"] == "main"
    assert run.data.params["epochs"] == "2"
    assert run.data.params["labels_version"] == str(row["labels_version"])
    assert run.data.tags["smartray.checkpoint_uri"] == row["checkpoint_uri"]
    assert run.data.tags["smartray.model_id"] == model_id
    with pytest.raises(SystemExit) as again:
        train_job.main(["--lake", digits_lake, "--resume", model_id])
    assert again.value.code == 2
    assert "that model finished" in capsys.readouterr().err
