"""The commands as a user types them: subprocesses through the `smartray` entry point."""

import json
import os
import subprocess
import sys

from tests.integration.conftest import BAD


def smartray(*args, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "smartray.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_ingest_tables_query_from_the_command_line(ray_session, corpus, tmp_path):
    lake = str(tmp_path / "lake")
    # The job joins the suite's Ray, as a job submitted to a cluster does.
    env = {"RAY_ADDRESS": ray_session.get_runtime_context().gcs_address}
    out = smartray("ingest", str(corpus), "--lake", lake, "--no-blur", env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "listed 16, unchanged 0, ingested 9, duplicates 1, quarantined 6" in out.stdout

    tables = smartray("tables", "--lake", lake, "--json")
    assert tables.returncode == 0, tables.stderr
    info = json.loads(tables.stdout)
    assert {k: v["rows"] for k, v in info.items()} == {
        "assets": 9, "asset_sources": 10, "quarantine": 6, "runs": 1
    }  # fmt: skip
    assert all(v["version"] == 1 and v["bytes"] > 0 for v in info.values())

    text = smartray("tables", "--lake", lake)
    assert text.returncode == 0
    assert "assets" in text.stdout
    assert "quarantine" in text.stdout

    q = smartray(
        "query",
        "SELECT reason, count(*) AS n FROM quarantine GROUP BY reason",
        "--lake",
        lake,
        "--output",
        "json",
    )
    assert q.returncode == 0, q.stderr
    got = {r["reason"]: r["n"] for r in map(json.loads, q.stdout.splitlines())}
    expected = {}
    for reason in BAD.values():
        expected[reason] = expected.get(reason, 0) + 1
    assert got == expected


def test_ingest_of_a_missing_folder_exits_2_and_writes_nothing(tmp_path):
    out = smartray("ingest", str(tmp_path / "nowhere"), "--lake", str(tmp_path / "lake"))
    assert out.returncode == 2
    assert "does not exist" in out.stderr
    assert not (tmp_path / "lake").exists()


def test_demo_builds_its_corpus_and_the_second_run_adds_nothing(tmp_path, capsys, monkeypatch):
    from jobs import demo

    # no opencv-doc videos (where `make demo` found them, it has 2 more): the generated clip
    monkeypatch.setenv("SMARTRAY_DEMO_VIDEOS", str(tmp_path / "no-videos"))
    # one active-learning round (the cold start): the loop's wiring, not its training
    # (tests/integration/test_loop.py trains)
    demo.main(["--lake", str(tmp_path / "lake"), "--data", str(tmp_path / "data"),
               "--loop-rounds", "1"])  # fmt: skip
    out = capsys.readouterr().out
    first = next(line for line in out.splitlines() if line.startswith("first run:"))
    second = next(line for line in out.splitlines() if line.startswith("second run:"))
    assert "ingested 50" in first  # 49 images, 1 video
    assert "quarantined 8" in first
    assert "videos 1 (" in first
    assert "ingested 0" in second
    assert "(0 new rows)" in second
    for reason in ("corrupt", "empty", "too_many_pixels", "truncated", "unsupported_format"):
        assert reason in out
    # managing: every asset grouped, a leak-free split, a diverse snapshot of photos
    assert "curate:" in out
    assert "0 group(s) straddle splits" in out
    assert "sample:     sample" in out
    assert "12 of" in out
    # the loop on the digits: the oracle labelled val/test, k-center picked the first batch
    report = tmp_path / "data-digits-loop" / "digits-loop" / "report.html"
    assert f"report: {report}" in out
    assert "round 1: 0 train labels, no model yet (cold start); picked 100 of" in out
    assert out.rstrip().splitlines()[-1].startswith("  round 1: 0 train labels")
    assert report.read_bytes().startswith(b"<!DOCTYPE html>")
