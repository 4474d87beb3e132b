"""`smartray submit`: what it sends and what it refuses, without a cluster.

The real round trip (a token-protected head, the ingest job, its table) is in
tests/integration/test_submit.py.
"""

import shlex
import subprocess
import sys

import pytest

from smartray import cli
from smartray.cluster.submit import (
    SUBMIT_FLAGS,
    SubmitUsageError,
    exit_code,
    parse_submission,
    submitted_env,
)
from smartray.jobrun import job_settings

KEYS = {
    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLEKEY000000",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_SESSION_TOKEN": "session-token-example",
    "AWS_PROFILE": "prod",
}


@pytest.fixture(autouse=True)
def _no_ambient_cluster(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


def test_flags_of_submit_and_of_the_job_can_come_in_any_order(tmp_path):
    s = parse_submission(
        ["ingest", "/data/a b", "--address", "127.0.0.1:8265", "--lake", "s3://l/x",
         "--working-dir", str(tmp_path), "--no-blur", "--submission-id=run-1"]
    )  # fmt: skip
    assert (s.job, s.module) == ("ingest", "jobs.ingest")
    assert s.address == "http://127.0.0.1:8265"
    assert (s.submission_id, s.wait) == ("run-1", True)
    # the cluster runs the job module with exactly the job's flags, quoting kept
    assert shlex.split(s.entrypoint) == [
        "python", "-m", "jobs.ingest", "/data/a b", "--lake", "s3://l/x", "--no-blur"
    ]  # fmt: skip
    assert s.runtime_env()["working_dir"] == str(tmp_path)
    assert ".venv" in s.runtime_env()["excludes"]


def test_only_endpoint_and_region_travel_with_the_job(monkeypatch):
    for k, v in KEYS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:8333")
    s = parse_submission(["tables", "--address", "http://h:8265"])
    env = s.runtime_env()["env_vars"]
    assert env == {"AWS_REGION": "eu-north-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:8333"}
    text = repr(s) + repr(s.runtime_env())
    assert not any(secret in text for secret in KEYS.values())
    assert submitted_env(dict(KEYS)) == {}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nojob", "--address", "http://h:8265"], "unknown job 'nojob'; jobs: augment, check"),
        (["--address", "http://h:8265"], "no job given"),
        (["tables"], "no cluster address"),
        (["ingest", "--address", "http://h:8265"], "flags of 'ingest' are not valid"),
        (["ingest", "x", "--bogus", "--address", "http://h:8265"], "flags of 'ingest'"),
        (["tables", "--address", "http://h:8265", "--token-file", "/no/token"], "no such file"),
        (["tables", "--address"], "--address needs a value"),
    ],
)
def test_usage_errors_are_found_before_anything_is_sent(argv, message):
    with pytest.raises(SubmitUsageError, match=message):
        parse_submission(argv)


def test_a_config_file_that_lives_on_the_cluster_is_checked_there():
    s = parse_submission(
        ["ingest", "s3://raw/x", "--config", "/etc/smartray/ingest.yaml", "--address", "h:8265"]
    )
    assert s.job_args[-2:] == ("--config", "/etc/smartray/ingest.yaml")


def test_exit_code_is_the_jobs_own():
    assert exit_code("SUCCEEDED", 0) == 0
    assert exit_code("FAILED", 2) == 2  # a usage error on the cluster stays a usage error
    assert exit_code("FAILED", None) == 1
    assert exit_code("STOPPED", None) == 1


def test_no_job_has_a_flag_that_submit_takes_for_itself():
    for name in cli.job_names():
        settings = job_settings(name)
        flags = {"--" + f.replace("_", "-") for f in settings.model_fields}
        flags |= {"--" + (i.alias or "") for i in settings.model_fields.values()}
        assert not flags & set(SUBMIT_FLAGS), (name, flags & set(SUBMIT_FLAGS))


def test_cli_runs_submit_and_says_what_is_wrong():
    out = subprocess.run(
        [sys.executable, "-m", "smartray.cli", "submit", "nojob", "--address", "http://h:1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert "smartray submit: error: unknown job 'nojob'" in out.stderr


def test_an_unreachable_cluster_is_a_clear_error_and_exit_1(tmp_path):
    import socket

    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = subprocess.run(
        [sys.executable, "-m", "smartray.cli", "submit", "tables", "--lake", str(tmp_path),
         "--address", f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    reason = (
        f"cannot reach the cluster: Failed to connect to Ray at address: http://127.0.0.1:{port}"
    )
    assert reason in out.stderr
