"""Fuzzing ingest: seeded mutations of real JPEG/PNG/WebP/GIF/MP4 files through the real job.

`--fuzz-files` files (10,000 at full size), each one seed file (a demo-corpus photo
re-encoded, or a clip of opencv-doc's videos) with one to three mutations
(`hostile_media.MUTATIONS`), go through `ingest` on the suite's Ray. Asserted: the job
returns (no crash), within its deadline (no hang), and every input is accounted for
exactly once, as an asset source (new or duplicate) or a quarantine row with a reason
code and a detail; no input ends as `worker_crash` or `internal_error` (an error
smartray did not expect), no video as `decoder_crash` or `decode_timeout`.
"""

from __future__ import annotations

import collections
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from smartray import Lake
from smartray.demo.corpus import build_corpus
from smartray.ingest import IngestConfig, ingest
from smartray.video import VideoSettings
from tests.reliability import hostile_media as hm

VIDEO_SHARE = 0.1  # of the mutated files, MP4s (each is a Ray task of its own)
DEADLINE_S = 1200.0  # for the whole ingest at 10,000 files; scaled down for fewer
VIDEO_TIMEOUT_S = 60.0  # a video decoding longer is a hang (decode_timeout)
CRASHES = {"worker_crash", "internal_error", "decoder_crash"}
HANGS = {"decode_timeout"}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-seeds")
    corpus = build_corpus(root / "corpus", digits=0)
    images = hm.image_seeds(corpus / "photos")
    videos = hm.video_seeds(root / "videos")
    assert len(images) >= 32, "the demo photos did not load"
    assert videos, "no opencv-doc video found: run `make` (it unpacks .cache/opencv-doc)"
    return images, videos


def write_mutants(folder: Path, n: int, seed: int, images: dict, videos: dict) -> dict:
    """Writes n mutated files; returns {file name: (seed name, mutations)}."""
    folder.mkdir(parents=True)
    every = [*images.values(), *videos.values()]
    image_names, video_names = sorted(images), sorted(videos)
    made = {}
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        if rng.random() < VIDEO_SHARE:
            name = video_names[int(rng.integers(0, len(video_names)))]
            data = videos[name]
        else:
            name = image_names[int(rng.integers(0, len(image_names)))]
            data = images[name]
        mutant, how = hm.mutate(data, rng, every)
        ext = name.rsplit(".", 1)[1]
        out = f"fuzz-{i:05d}.{ext}"
        (folder / out).write_bytes(mutant)
        made[out] = (name, how)
    return made


def run_with_deadline(fn, deadline_s: float):
    """fn() in a thread; its result, or a failure if it does not end by the deadline."""
    box: dict = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as e:  # a crash of the job: reported by the test
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    started = time.perf_counter()
    t.start()
    t.join(deadline_s)
    took = time.perf_counter() - started
    if t.is_alive():
        pytest.fail(f"ingest still running after {deadline_s:.0f} s: a hang")
    if "error" in box:
        raise AssertionError(f"ingest crashed after {took:.0f} s: {box['error']!r}") from box[
            "error"
        ]
    return box["result"], took


def test_mutated_media_are_ingested_or_quarantined_exactly_once(
    ray_session, campaign, figures, seeds, tmp_path
):
    images, videos = seeds
    n = campaign.fuzz_files
    src = tmp_path / "mutants"
    made = write_mutants(src, n, campaign.seed, images, videos)
    lake_uri = str(tmp_path / "lake")
    cfg = IngestConfig(
        sources=(str(src),),
        lake=lake_uri,
        video=VideoSettings(timeout_s=VIDEO_TIMEOUT_S),
    )
    deadline = max(300.0, DEADLINE_S * n / 10_000)
    summary, took = run_with_deadline(lambda: ingest(cfg), deadline)

    lake = Lake(lake_uri)
    run = summary.run_id
    sources = lake.table("asset_sources", columns=["source_uri", "run_id"]).to_pylist()
    quarantine = lake.table(
        "quarantine", columns=["source_uri", "reason", "detail", "run_id"]
    ).to_pylist()
    src_uris = [r["source_uri"] for r in sources if r["run_id"] == run]
    q_rows = [r for r in quarantine if r["run_id"] == run]
    q_uris = [r["source_uri"] for r in q_rows]
    names = lambda uris: collections.Counter(Path(u).name for u in uris)  # noqa: E731
    accounted = names(src_uris) + names(q_uris)
    assert set(accounted) == set(made), (
        f"unaccounted: {sorted(set(made) - set(accounted))[:5]}, "
        f"unknown: {sorted(set(accounted) - set(made))[:5]}"
    )
    twice = [k for k, v in accounted.items() if v > 1]
    assert not twice, f"inputs accounted for twice: {twice[:5]}"
    assert all(r["reason"] and r["detail"] for r in q_rows), "a quarantine row without a reason"
    c = summary.counts
    assert c["listed"] == n
    assert c["ingested"] + c["duplicates"] + c["quarantined"] == n, c

    reasons = collections.Counter(r["reason"] for r in q_rows)
    crashes = {r: reasons[r] for r in CRASHES if reasons[r]}
    hangs = {r: reasons[r] for r in HANGS if reasons[r]}
    bad = [
        (Path(r["source_uri"]).name, made[Path(r["source_uri"]).name], r["reason"], r["detail"])
        for r in q_rows
        if r["reason"] in CRASHES | HANGS
    ]
    is_video = {k for k, (seed, _) in made.items() if seed.endswith(".mp4")}
    figures.record(
        "test_fuzz",
        files=n,
        images=n - len(is_video),
        videos=len(is_video),
        accepted=len(src_uris),
        ingested=c["ingested"],
        duplicates=c["duplicates"],
        quarantined=len(q_rows),
        quarantined_by_reason=dict(sorted(reasons.items())),
        accepted_videos=sum(Path(u).name in is_video for u in src_uris),
        crashes=sum(crashes.values()),
        hangs=sum(hangs.values()),
        ingest_s=round(took, 1),
        files_per_s=round(n / took, 1),
    )
    distinct = {detail.splitlines()[-1][-200:]: (name, how) for name, how, _, detail in bad}
    assert not crashes, f"crashes: {crashes}; distinct: {distinct}"
    assert not hangs, f"hangs: {hangs}; distinct: {distinct}"
    # The mutations must bite and must not break everything: both outcomes occur.
    assert src_uris
    assert q_rows
