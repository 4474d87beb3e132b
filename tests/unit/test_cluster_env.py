from smartray.cluster.local import worker_env


def test_worker_env_forwards_endpoint_and_allocator_but_never_keys(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDNOTFORWORKERS")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-not-for-workers")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token-not-for-workers")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("MALLOC_TOP_PAD_", "100000000")
    env = worker_env()
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert env["MALLOC_TOP_PAD_"] == "100000000"
    text = repr(env)
    assert "AKIDNOTFORWORKERS" not in text
    assert "secret-not-for-workers" not in text
    assert "token-not-for-workers" not in text


def test_in_a_submitted_job_the_jobs_own_env_vars_are_not_sent_again(monkeypatch):
    """Ray refuses to start a driver whose ray.init env_vars repeat the job's."""
    import json

    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    monkeypatch.setenv("MALLOC_TOP_PAD_", "100000000")
    job = {"runtime_env": {"env_vars": {"AWS_REGION": "eu-north-1"}}, "metadata": {}}
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", json.dumps(job))
    env = worker_env()
    assert "AWS_REGION" not in env
    assert env["MALLOC_TOP_PAD_"] == "100000000"
