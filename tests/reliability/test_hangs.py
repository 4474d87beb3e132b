"""User code that never returns: the job fails within its deadline and names the stalled step.

A detector plug-in (`--detectors module:Class`) that sleeps on every image, one whose
constructor never returns, and a `--model module:factory` that waits on a lock forever
(`smartray/testing/stalls.py`). Each job must exit 1 within its deadline plus a bounded
overhead, say which step stalled (and on which input), and commit nothing.
"""

import re
import time

import pytest

from jobs import ingest as ingest_job
from jobs import train as train_job
from smartray import Lake
from smartray.testing import digits, files
from tests.integration.test_train import label_and_split

DEADLINE_S = 2
# What the job may spend besides the deadline: listing, reading the lake, Ray tasks
# starting (shared 2-CPU Ray), the error path. Measured: 1-4 s.
OVERHEAD_S = 25
STALLS = "smartray.testing.stalls"


def run_failing(main, argv, capfd, caplog):
    """Runs a job's `main`; returns (exit code, seconds, its stdout + stderr + log)."""
    t0 = time.monotonic()
    with pytest.raises(SystemExit) as exited:
        main(argv)
    took = time.monotonic() - t0
    out, err = capfd.readouterr()
    return exited.value.code, took, out + err + caplog.text


@pytest.fixture
def photos(tmp_path, campaign):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(4):
        img = files.pattern(48, 64, seed=campaign.seed + i)
        (folder / f"p{i}.jpg").write_bytes(files.jpeg(img))
    return folder


@pytest.mark.parametrize(
    ("plugin", "where"),
    [("StallsOnEachImage", "on each image"), ("StallsWhenLoaded", "when loaded")],
)
def test_a_stalled_detector_plugin_fails_the_ingest_in_time(
    ray_session, photos, tmp_path, capfd, caplog, figures, plugin, where
):
    lake = str(tmp_path / "lake")
    name = f"{STALLS}:{plugin}"
    argv = [str(photos), "--lake", lake, "--detectors", name,
            "--detector-timeout-s", str(DEADLINE_S)]  # fmt: skip
    code, took, text = run_failing(ingest_job.main, argv, capfd, caplog)
    assert code == 1, text[-3000:]
    assert took < DEADLINE_S + OVERHEAD_S, f"{took:.1f} s"
    said = re.search(rf"detector '{re.escape(name)}'( \(loading\))? did not answer within "
                     rf"{DEADLINE_S} s( on (\S+))?", text)  # fmt: skip
    assert said, text[-3000:]
    if where == "on each image":  # stalls in a Ray task: the input is named
        assert said.group(3) is not None, said[0]
        assert said.group(3).startswith(str(photos)), said[0]
    else:  # stalls in the driver, before any task
        assert said.group(1) == " (loading)", said[0]
    # nothing was committed: the run failed before its commits
    lk = Lake(lake)
    assert not lk.exists("assets") or lk.table("assets").num_rows == 0
    figures.record(
        f"test_hangs[detector {where}]",
        deadline_s=DEADLINE_S,
        time_to_fail_s=round(took, 2),
        exit_code=code,
        message=said[0],
    )


@pytest.fixture(scope="module")
def labelled_lake(tmp_path_factory, ray_session):
    root = tmp_path_factory.mktemp("digits")
    digits.write_pngs(root, 40)
    lake = str(tmp_path_factory.mktemp("digits-lake") / "lake")
    label_and_split(root, lake)
    return lake


def test_a_stalled_model_factory_fails_the_training_in_time(labelled_lake, capfd, caplog, figures):
    name = f"{STALLS}:never_builds"
    capfd.readouterr()
    caplog.clear()
    argv = ["--lake", labelled_lake, "--split", "main", "--epochs", "1", "--model", name,
            "--model-timeout-s", str(DEADLINE_S)]  # fmt: skip
    code, took, text = run_failing(train_job.main, argv, capfd, caplog)
    assert code == 1, text[-3000:]
    assert took < DEADLINE_S + OVERHEAD_S, f"{took:.1f} s"
    said = re.search(rf"model factory '{re.escape(name)}' did not answer within {DEADLINE_S} s",
                     text)  # fmt: skip
    assert said, text[-3000:]
    lk = Lake(labelled_lake)
    assert not lk.exists("models") or lk.table("models").num_rows == 0
    figures.record(
        "test_hangs[model factory]",
        deadline_s=DEADLINE_S,
        time_to_fail_s=round(took, 2),
        exit_code=code,
        message=said[0],
    )
