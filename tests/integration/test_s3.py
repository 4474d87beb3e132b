"""Ingest from S3 into a lake on S3, against a real S3 server on loopback (SeaweedFS)."""

import os
import uuid

import pytest

from jobs import ingest as ingest_job
from smartray import Lake
from smartray.ingest import IngestConfig, ingest, pipeline
from smartray.sanitize import SanitizeConfig
from smartray.testing import files
from tests.integration.conftest import BAD, GOOD

S3_BAD = {k: v for k, v in BAD.items() if k != "escape.jpg"}  # no symlinks in a bucket


@pytest.fixture
def buckets(s3_server):
    tag = uuid.uuid4().hex[:8]
    raw, lake = f"raw-{tag}", f"lake-{tag}"
    client = s3_server.client()
    client.create_bucket(Bucket=raw)
    client.create_bucket(Bucket=lake)
    return raw, lake


def upload(client, folder, bucket, prefix):
    for dirpath, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            rel = os.path.relpath(path, folder)
            with open(path, "rb") as f:
                client.put_object(Bucket=bucket, Key=f"{prefix}/{rel}", Body=f.read())


def outcomes(lake, prefix):
    sources = lake.table("asset_sources", to="polars")
    quarantine = lake.table("quarantine", to="polars")
    rel = lambda uri: uri.removeprefix(prefix)  # noqa: E731
    return (
        {rel(u): a for u, a in zip(sources["source_uri"], sources["asset_id"], strict=True)},
        {rel(u): r for u, r in zip(quarantine["source_uri"], quarantine["reason"], strict=True)},
    )


def test_s3_to_s3_ingest_then_rerun_reads_no_object_bodies(s3_server, buckets, corpus, capsys):
    raw, lake_bucket = buckets
    client = s3_server.client()
    upload(client, corpus, raw, "corpus")
    # A sibling "folder" that shares the prefix's letters is not part of the source.
    client.put_object(Bucket=raw, Key="corpus-private/secret.jpg", Body=files.jpeg(files.pattern()))
    source, lake_uri = f"s3://{raw}/corpus", f"s3://{lake_bucket}/lake"

    ingest_job.main([source, "--lake", lake_uri, "--no-blur"])
    assert (
        "listed 15, unchanged 0, ingested 9, duplicates 1, quarantined 5" in capsys.readouterr().out
    )
    lake = Lake(lake_uri)
    sources, quarantine = outcomes(lake, source + "/")
    assert set(sources) == set(GOOD)
    assert quarantine == S3_BAD
    assert lake.table("assets", columns=["asset_id"]).num_rows == 9
    etags = lake.table("asset_sources", columns=["etag"]).column("etag").to_pylist()
    assert all(etags)

    gets = s3_server.object_gets(raw)
    ingest_job.main([source, "--lake", lake_uri, "--no-blur"])
    out = capsys.readouterr().out
    assert "listed 15, unchanged 14, ingested 0" in out  # only the pixel bomb is looked at again
    assert s3_server.object_gets(raw) - gets == 1

    # A changed object is read again; the unchanged ones still are not.
    client.put_object(
        Bucket=raw, Key="corpus/gray.jpg", Body=files.jpeg(files.pattern(20, 20, 1, seed=42))
    )
    gets = s3_server.object_gets(raw)
    ingest_job.main([source, "--lake", lake_uri, "--no-blur"])
    assert "unchanged 13, ingested 1" in capsys.readouterr().out
    assert s3_server.object_gets(raw) - gets == 2  # gray.jpg and the pixel bomb
    assert lake.table("assets", columns=["asset_id"]).num_rows == 10


def test_object_deleted_between_listing_and_reading(s3_server, buckets, corpus, monkeypatch):
    raw, lake_bucket = buckets
    client = s3_server.client()
    upload(client, corpus, raw, "corpus")
    real_list = pipeline.list_inputs

    def list_then_delete(sources, s3=None):
        listing = real_list(sources, s3)
        client.delete_object(Bucket=raw, Key="corpus/cmyk.jpg")  # gone before any worker reads
        return listing

    monkeypatch.setattr(pipeline, "list_inputs", list_then_delete)
    source, lake_uri = f"s3://{raw}/corpus", f"s3://{lake_bucket}/lake"
    summary = ingest(
        IngestConfig(sources=(source,), lake=lake_uri, sanitize=SanitizeConfig(blur=False))
    )
    assert summary.counts["ingested"] == 8
    sources, quarantine = outcomes(Lake(lake_uri), source + "/")
    assert quarantine["cmyk.jpg"] == "unreadable"
    assert set(sources) == set(GOOD) - {"cmyk.jpg"}
    detail = (
        Lake(lake_uri)
        .table("quarantine", to="polars")
        .filter(source_uri=f"{source}/cmyk.jpg")["detail"][0]
    )
    assert "deleted between listing and reading" in detail


def test_credentials_appear_nowhere_in_the_lake_or_the_output(s3_server, buckets, corpus, capfd):
    raw, lake_bucket = buckets
    client = s3_server.client()
    upload(client, corpus, raw, "corpus")
    ingest_job.main([f"s3://{raw}/corpus", "--lake", f"s3://{lake_bucket}/lake"])
    captured = capfd.readouterr()
    secrets = [s3_server.access_key.encode(), s3_server.secret_key.encode()]
    for text in (captured.out, captured.err):
        assert not any(s.decode() in text for s in secrets)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=lake_bucket)["Contents"]]
    assert any("_delta_log" in k for k in keys)
    assert any(k.endswith(".parquet") for k in keys)
    for key in keys:
        body = client.get_object(Bucket=lake_bucket, Key=key)["Body"].read()
        assert not any(s in body for s in secrets), key
    run = Lake(f"s3://{lake_bucket}/lake").table("runs", to="polars").to_dicts()[0]
    assert not any(s.decode() in str(run) for s in secrets)
