"""Video sampling speed: smartray's modes against decoding every frame, same clips.

    .venv/bin/python bench/video.py [--seconds 60] [--real PATH]

Clips: a generated 1280x720 H.264 clip (30 fps, a keyframe every second as phones and
cameras write them, a scene cut every 5 s; cached in bench/out/) and a real one (Debian
opencv-doc's `vtest.avi`, 768x576 MPEG-4 part 2, if found; `make demo` unpacks it).

For each clip, in the same run and one thread each:
- baseline: PyAV decodes every frame and converts each to a BGR array in one process
  (what a reader that emits every frame as a row does);
- smartray: `sample_isolated` (what ingest runs: a decoder child process, frames back
  through a pipe, sampling) in `--fps 1`, keyframes-only and the default mode
  (keyframes + scene changes, at most one frame per second), with the decoder child
  already running (as for every video after a Ray worker's first); the `--fps 1` run
  on a fresh child is printed too.

Prints wall time (best of `--repeat`), frames kept, frames kept per second of wall time,
and each mode's speed-up over the baseline (baseline time / mode time). Goals:
keyframes >= 3x; rate mode no slower than the baseline.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import av
import numpy as np

from smartray.demo.corpus import real_videos
from smartray.testing.videos import write_video
from smartray.video import isolated
from smartray.video.isolated import sample_isolated
from smartray.video.sampling import SamplingConfig

OUT = Path(__file__).resolve().parent / "out"
MODES = {
    "fps 1": SamplingConfig(fps=1),
    "keyframes": SamplingConfig(keyframes=True),
    "default": SamplingConfig(),
}


def generated_clip(seconds: int) -> Path:
    """1280x720, 30 fps, GOP 30, a new scene every 5 s drifting inside (cached)."""
    path = OUT / f"clip-{seconds}s-720p.mp4"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:720, 0:1280].astype(np.float32)

    def frames():  # type: ignore[no-untyped-def]
        for i in range(seconds * 30):
            if i % 150 == 0:
                f = rng.uniform(0.005, 0.03, 3)
                colour = rng.uniform(0, 255, 3)
                base = np.stack(
                    [0.5 * colour[c] + 60 * (1 + np.sin(f[c] * x + f[(c + 1) % 3] * y))
                     for c in range(3)], axis=-1,
                ).clip(0, 255).astype(np.uint8)  # fmt: skip
            yield np.roll(base, 2 * (i % 150), axis=1)

    tmp = path.with_suffix(".tmp.mp4")
    write_video(tmp, frames(), fps=30, gop=30, options={"preset": "veryfast", "crf": "23"})
    tmp.rename(path)
    return path


def baseline(path: Path) -> tuple[float, int]:
    """Decode every frame and convert it to a BGR array, one process, one thread."""
    start = time.perf_counter()
    n = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.thread_count = 1
        for frame in container.decode(stream):
            frame.to_ndarray(format="bgr24")
            n += 1
    return time.perf_counter() - start, n


def fresh_child() -> None:
    """Ends the decoder children of this process: the next video starts a new one."""
    for child in list(isolated._CHILDREN.values()):
        child.kill()
    isolated._CHILDREN.clear()


def smartray_mode(path: Path, config: SamplingConfig) -> tuple[float, int]:
    start = time.perf_counter()
    kept = []
    sample_isolated(str(path), config, 10**9, kept.append)
    return time.perf_counter() - start, len(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--real", type=Path, default=None, help="a real clip (default: vtest.avi)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best kept)")
    args = parser.parse_args()
    clips = [generated_clip(args.seconds)]
    real = args.real or next((p for p in real_videos() if p.name == "vtest.avi"), None)
    if real is not None:
        clips.append(real)
    else:
        print("no real clip found (run `make demo` to unpack opencv-doc, or give --real)")
    for clip in clips:
        with av.open(str(clip)) as c:
            s = c.streams.video[0]
            desc = f"{s.codec_context.name} {s.codec_context.width}x{s.codec_context.height}"
            desc += f", {float(s.average_rate or 0):.0f} fps, {s.frames} frames"
        print(f"\n{clip.name}: {desc}")
        base_t, base_n = min(baseline(clip) for _ in range(args.repeat))
        print(f"  {'baseline (every frame)':24} {base_t:7.2f} s  {base_n:5d} frames  "
              f"{base_n / base_t:8.1f} frames/s")  # fmt: skip
        fresh_child()
        cold, _ = smartray_mode(clip, MODES["fps 1"])
        for name, config in MODES.items():
            t, n = min(smartray_mode(clip, config) for _ in range(args.repeat))
            print(f"  {'smartray ' + name:24} {t:7.2f} s  {n:5d} kept    "
                  f"{n / t:8.1f} kept/s   {base_t / t:5.2f}x the baseline's speed")  # fmt: skip
            if name == "fps 1":
                note = f"its start is paid once per Ray worker; {base_t / cold:.2f}x"
                print(f"  {'  (fresh decoder child)':24} {cold:7.2f} s  ({note})")


if __name__ == "__main__":
    main()
