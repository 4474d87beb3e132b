"""MLflow stays out of the process unless a run asks for it."""

import subprocess
import sys

import pytest
from pydantic import ValidationError

from smartray.errors import ConfigError
from smartray.train import TrainConfig, tracking


def test_training_without_the_flag_imports_no_mlflow():
    code = (
        "import sys, jobs.train, smartray.train.pipeline, smartray.train.tracking\n"
        "print('mlflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_store_that_refuses_is_a_config_error_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="the tracking store refused"):
        tracking.check(f"sqlite:///{blocker}/sub/mlflow.db")


def test_a_tracking_uri_with_a_password_is_refused_before_it_is_recorded():
    with pytest.raises(ValidationError, match="MLFLOW_TRACKING_PASSWORD"):
        TrainConfig(split="main", mlflow_tracking_uri="https://me:secret@mlflow.example")
    assert TrainConfig(split="main", mlflow_tracking_uri="sqlite:///m.db").mlflow_tracking_uri

    from jobs import train as train_job

    with pytest.raises(SystemExit) as e:  # the job says so, exit 2, before any lake is read
        train_job.main(["--split", "main", "--lake", "/nonexistent",
                        "--mlflow-tracking-uri", "http://me:secret@localhost:5000"])  # fmt: skip
    assert e.value.code == 2
