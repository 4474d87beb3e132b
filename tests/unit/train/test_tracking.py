"""MLflow stays out of the process unless a run asks for it."""

import subprocess
import sys

import pytest

from smartray.errors import ConfigError
from smartray.train import tracking


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
