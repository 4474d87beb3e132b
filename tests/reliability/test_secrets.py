"""A full run with AWS keys in the environment: the keys appear nowhere they could leak.

The keys are the SeaweedFS identity's (real secrets of this run: the server checks them)
plus fake ones a user's shell may hold (a second profile's key, an MLflow password).
The main jobs run on an S3 lake: ingest (S3 to S3), curate, split, query. Then every
place is searched, decoded where it is encoded:

- every object of the lake bucket: Delta log JSON and checkpoints as text, and Parquet
  files both as bytes and as their decoded rows (compressed pages hide nothing);
- the `runs` rows;
- the Ray session's log files (drivers, workers, raylet, GCS);
- the jobs' stdout, stderr and log records;
- the runtime env `smartray submit` would send, and the rendered KubeRay manifests.
"""

import io
import json
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from jobs import curate as curate_job
from jobs import ingest as ingest_job
from jobs import query as query_job
from jobs import split as split_job
from smartray import Lake
from smartray.cluster.submit import parse_submission
from smartray.demo.corpus import build_corpus
from tests.integration.test_s3 import upload

FAKE = {
    "AWS_SECRET_ACCESS_KEY_BACKUP": "fAkEsEcReT/backup/0123456789abcdefGHIJ",
    "MLFLOW_TRACKING_PASSWORD": "fake-mlflow-password-7d1c9e",
}


def _texts_of_object(key: str, body: bytes) -> list[bytes]:
    """What an object says: its bytes, and for Parquet its decoded rows too."""
    out = [body]
    if key.endswith(".parquet"):
        table = pq.read_table(io.BytesIO(body))
        for column in table.columns:
            for v in column.to_pylist():
                out.append(v if isinstance(v, bytes) else str(v).encode())
        out.append(str(pq.ParquetFile(io.BytesIO(body)).metadata.metadata).encode())
    return out


def _count(secrets: list[bytes], chunks) -> int:
    return sum(chunk.count(s) for chunk in chunks for s in secrets)


@pytest.fixture
def run(s3_server, ray_session, tmp_path, monkeypatch, capfd, caplog):
    """The jobs, run on an S3 lake with the keys in the environment; what they printed."""
    for k, v in FAKE.items():
        monkeypatch.setenv(k, v)
    tag = uuid.uuid4().hex[:8]
    raw, lake_bucket = f"raw-{tag}", f"lake-{tag}"
    client = s3_server.client()
    client.create_bucket(Bucket=raw)
    client.create_bucket(Bucket=lake_bucket)
    corpus = build_corpus(tmp_path / "demo", digits=20)
    for sub in ("videos", "broken"):
        for p in (corpus / sub).iterdir():
            p.unlink()
    upload(client, corpus, raw, "demo")
    lake = f"s3://{lake_bucket}/lake"
    ingest_job.main([f"s3://{raw}/demo", "--lake", lake])
    curate_job.main(["--lake", lake])
    split_job.main(["--lake", lake, "--split", "main"])
    query_job.main(["SELECT count(*) AS n FROM assets", "--lake", lake])
    out, err = capfd.readouterr()
    return {"client": client, "bucket": lake_bucket, "lake": lake,
            "printed": [out.encode(), err.encode(), caplog.text.encode()]}  # fmt: skip


def test_keys_appear_nowhere(run, s3_server, figures):
    secrets = [s3_server.access_key.encode(), s3_server.secret_key.encode()]
    secrets += [v.encode() for v in FAKE.values()]
    found: dict[str, int] = {}
    # the lake: every object, decoded
    client, bucket = run["client"], run["bucket"]
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [o["Key"] for o in page.get("Contents", [])]
    assert any("_delta_log/" in k and k.endswith(".json") for k in keys)
    assert any(k.endswith(".parquet") for k in keys)
    log_chunks, parquet_chunks = [], []
    for key in keys:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        (log_chunks if "_delta_log/" in key else parquet_chunks).extend(_texts_of_object(key, body))
    found["delta_log"] = _count(secrets, log_chunks)
    found["parquet"] = _count(secrets, parquet_chunks)
    # runs rows
    runs = Lake(run["lake"]).table("runs").to_pylist()
    assert {r["job"] for r in runs} >= {"ingest", "curate", "split"}
    found["runs"] = _count(secrets, [json.dumps(runs, default=str).encode()])
    # Ray's logs of this session
    import ray

    logs_dir = ray._private.worker._global_node.get_logs_dir_path()
    ray_logs = [p.read_bytes() for p in Path(logs_dir).rglob("*") if p.is_file()]
    assert ray_logs
    found["ray_logs"] = _count(secrets, ray_logs)
    found["job_output"] = _count(secrets, run["printed"])
    # what `smartray submit` would send, and the KubeRay manifests as rendered
    submission = parse_submission(
        ["--address", "http://127.0.0.1:1", "ingest", "s3://raw/x", "--lake", run["lake"]]
    )
    sent = json.dumps([submission.runtime_env(), submission.entrypoint]).encode()
    assert b"AWS_ENDPOINT_URL" in sent  # the endpoint does travel
    found["submit_runtime_env"] = _count(secrets, [sent])
    from smartray.deploy.manifests import ROOT, render

    rendered = [json.dumps(render(ROOT / "k8s" / "overlays" / o)).encode() for o in ("cpu", "gpu")]
    found["rayjob_manifests"] = _count(secrets, rendered)
    figures.record(
        "test_secrets",
        secrets_searched=len(secrets),
        lake_objects=len(keys),
        ray_log_files=len(ray_logs),
        runs_rows=len(runs),
        matches=found,
    )
    assert sum(found.values()) == 0, found
