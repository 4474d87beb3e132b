"""Decompression bombs: small files that claim huge pictures are refused, in little memory.

The bombs: a 30000x30000 PNG, a JPEG whose header claims 65500x65500, a GIF of 5,000
frames of 2000x2000, and H.264 MP4s whose parameter set claims 100000x100000 (beyond
what FFmpeg accepts) and 16000x16000 (accepted by FFmpeg, over smartray's limit). Each is
a few KB to a few MB.

Asserted: ingest turns each into a quarantine row with its specific reason, and peak
memory stays under 512 MB. Peak memory is measured twice, both as the kernel's
high-water mark of resident memory (no sampling gap):

- per bomb, in a fresh process that runs the decode path the ingest runs on it
  (`sanitize_image` for an image, as the Ray worker does; `sample_video` for a video, as
  the decoder child does): its `VmHWM` at the end, imports included (not `ru_maxrss`,
  which Linux carries over from the forking parent across `exec`);
- over the real ingest of all bombs on the suite's Ray: `VmHWM` of every Ray worker and
  decoder child, reset (`/proc/PID/clear_refs` = 5) just before the run.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
from pathlib import Path

import psutil
from PIL import Image

from smartray import Lake
from smartray.ingest import IngestConfig, ingest
from smartray.testing import files
from tests.reliability import hostile_media as hm

LIMIT_MB = 512
GIF_FRAMES, GIF_SIDE = 5000, 2000

EXPECTED = {
    "bomb-30000x30000.png": "too_many_pixels",
    "huge-header-65500x65500.jpg": "too_many_pixels",
    f"frames-{GIF_FRAMES}-of-{GIF_SIDE}x{GIF_SIDE}.gif": "too_many_pixels",
    "claims-100000x100000.mp4": "corrupt",  # FFmpeg refuses such a parameter set
    "claims-16000x16000.mp4": "too_many_pixels",
}


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small, complete JPEG whose frame header (SOF0) claims width x height."""
    data = bytearray(files.jpeg(files.pattern(16, 16)))
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def gif_of_frames(n: int, side: int) -> bytes:
    """A GIF of n frames of side x side, each a few bytes (a run of one colour)."""
    ims = [Image.new("P", (side, side), i) for i in range(2)]
    buf = io.BytesIO()
    ims[0].save(buf, "GIF", save_all=True, append_images=ims[1:], duration=10)
    d = buf.getvalue()
    second = d.find(b"\x21\xf9", d.find(b"\x21\xf9") + 1)  # the second frame's control block
    return d[:second] + d[second:-1] * (n - 1) + b";"


def make_bombs(folder: Path) -> None:
    folder.mkdir(parents=True)
    clip = next(iter(hm.video_seeds(folder.parent / "clips", frames=6).values()))
    made = {
        "bomb-30000x30000.png": files.png_bomb_header(30000, 30000),
        "huge-header-65500x65500.jpg": jpeg_claiming(65500, 65500),
        f"frames-{GIF_FRAMES}-of-{GIF_SIDE}x{GIF_SIDE}.gif": gif_of_frames(GIF_FRAMES, GIF_SIDE),
        "claims-100000x100000.mp4": hm.set_sps_dims(clip, 100_000, 100_000),
        "claims-16000x16000.mp4": hm.set_sps_dims(clip, 16_000, 16_000),
    }
    assert made["claims-16000x16000.mp4"] != clip
    for name, data in made.items():
        (folder / name).write_bytes(data)


PEAK = """
import json, sys
path = sys.argv[1]
if path.endswith(".mp4"):
    from smartray.video.decode import sample_video
    from smartray.video.sampling import SamplingConfig
    from smartray.sanitize.cv import DEFAULT_MAX_PIXELS
    run = lambda: sample_video(path, SamplingConfig(), DEFAULT_MAX_PIXELS, on_frame=lambda f: None)
else:
    from smartray.sanitize import SanitizeConfig
    from smartray.sanitize.ops import sanitize_image
    data = open(path, "rb").read()
    run = lambda: sanitize_image(data, config=SanitizeConfig(), name=path)
try:
    run()
    outcome = "accepted"
except Exception as e:
    outcome = f"{type(e).__name__}: {e}"
# VmHWM: this process's own high-water mark (ru_maxrss would keep the forking parent's)
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"peak_mb": int(hwm.split()[1]) / 1024, "outcome": outcome}))
"""


def peak_of_decode(path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PEAK, str(path)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def ray_processes() -> list[psutil.Process]:
    """Ray's worker processes on this machine and their children (decoder processes)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "default_worker.py" in cmd:
            found.append(p)
            found.extend(p.children(recursive=True))
    return found


def reset_peaks(procs: list[psutil.Process]) -> None:
    for p in procs:
        Path(f"/proc/{p.pid}/clear_refs").write_text("5")


def peak_mb(p: psutil.Process) -> float:
    for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for {p.pid}")


def test_bombs_are_refused_with_reasons_in_little_memory(ray_session, figures, tmp_path):
    src = tmp_path / "bombs"
    make_bombs(src)
    sizes = {p.name: p.stat().st_size for p in src.iterdir()}

    per_bomb = {p.name: peak_of_decode(p) for p in sorted(src.iterdir())}
    baseline_img = tmp_path / "small.jpg"
    baseline_img.write_bytes(files.jpeg(files.pattern(64, 64)))
    baseline = peak_of_decode(baseline_img)
    assert baseline["outcome"] == "accepted"

    # Workers exist once a task ran; start them before resetting their peaks.
    ray_session.get([ray_session.remote(lambda: 0).remote() for _ in range(2)])
    before = ray_processes()
    reset_peaks(before)
    lake_uri = str(tmp_path / "lake")
    summary = ingest(IngestConfig(sources=(str(src),), lake=lake_uri))
    procs = {p.pid: p for p in [*before, *ray_processes()] if p.is_running()}
    ray_peak = max(peak_mb(p) for p in procs.values())

    q = Lake(lake_uri).table("quarantine", columns=["source_uri", "reason", "detail"])
    rows = {Path(r["source_uri"]).name: r for r in q.to_pylist()}
    figures.record(
        "test_bombs",
        bombs={
            name: {
                "bytes": sizes[name],
                "reason": rows.get(name, {}).get("reason"),
                "decode_peak_mb": round(per_bomb[name]["peak_mb"], 1),
            }
            for name in sorted(sizes)
        },
        baseline_decode_peak_mb=round(baseline["peak_mb"], 1),
        ray_processes_peak_mb=round(ray_peak, 1),
        ray_processes=len(procs),
    )
    assert summary.counts["ingested"] == 0
    assert {n: r["reason"] for n, r in rows.items()} == EXPECTED
    assert all(r["detail"] for r in rows.values())
    for name, measured in per_bomb.items():
        assert measured["outcome"].startswith("RejectedInput"), (name, measured)
        assert measured["peak_mb"] < LIMIT_MB, (name, measured)
    assert ray_peak < LIMIT_MB
