"""Decode a video in a child process, so a decoder crash costs that child, not the job.

PyAV has had segfaults on truncated streams that no `except` can catch; in a Ray worker
one would kill the task and every input of its block. `sample_isolated` runs
`sample_video` in `python -m smartray.video.child` and streams the kept frames back
through a pipe (a JSON header line, then the raw BGR bytes), so at most one frame is in
flight: a long video never sits in memory whole.

A child that dies (a signal, an abort) or runs past its time ends as `RejectedInput`
with reason `decoder_crash` or `decode_timeout`; the caller quarantines the video.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

import numpy as np

from smartray.types import Reason, RejectedInput
from smartray.video.decode import SampledFrame, SampledVideo, VideoInfo
from smartray.video.sampling import SamplingConfig

CHILD_MODULE = "smartray.video.child"
DEFAULT_TIMEOUT_S = 1800.0


def sample_isolated(
    path: str,
    config: SamplingConfig,
    max_pixels: int,
    on_frame: Callable[[SampledFrame], None],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    child_module: str = CHILD_MODULE,
) -> SampledVideo:
    """`sample_video` in a child process; each kept frame goes to `on_frame` as it comes.

    Raises:
        RejectedInput: what `sample_video` raises, or `decoder_crash` if the child died,
            or `decode_timeout` if it ran past `timeout_s`. Frames already given to
            `on_frame` belong to a video that is then refused: the caller drops them.
    """
    request = {"path": path, "config": config.model_dump(), "max_pixels": max_pixels}
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", child_module],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        proc.kill()

    timer = threading.Timer(timeout_s, kill)
    timer.start()
    stderr: list[bytes] = []
    drain = threading.Thread(target=lambda: stderr.append(_read_all(proc.stderr)), daemon=True)
    drain.start()
    try:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(json.dumps(request).encode())
        proc.stdin.close()
        final = _read_frames(proc.stdout, on_frame)
        code = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        drain.join(timeout=5)
    if timed_out.is_set():
        raise RejectedInput(Reason.DECODE_TIMEOUT, f"decoding took longer than {timeout_s:.0f} s")
    if final is None or code != 0:
        raise RejectedInput(Reason.DECODER_CRASH, _death(code, b"".join(stderr)))
    if "rejected" in final:
        raise RejectedInput(Reason(final["rejected"]["reason"]), final["rejected"]["detail"])
    return SampledVideo(
        VideoInfo(**final["info"]), decoded=int(final["decoded"]), kept=int(final["kept"])
    )


def _read_all(stream: IO[bytes] | None) -> bytes:
    return stream.read() if stream is not None else b""


def _read_frames(
    stdout: IO[bytes], on_frame: Callable[[SampledFrame], None]
) -> dict[str, Any] | None:
    """Reads frame records until the final record; None if the stream ends before it."""
    while True:
        line = stdout.readline()
        if not line:
            return None
        record = json.loads(line)
        if "frame_index" not in record:
            return dict(record)
        h, w, c = record["shape"]
        raw = stdout.read(h * w * c)
        if len(raw) != h * w * c:
            return None
        image = np.frombuffer(raw, np.uint8).reshape(h, w, c)
        on_frame(
            SampledFrame(
                record["frame_index"], record["timestamp_ms"], image, tuple(record["reasons"])
            )
        )


def _death(code: int | None, stderr: bytes) -> str:
    if code is not None and code < 0:
        try:
            how = f"signal {signal.Signals(-code).name}"
        except ValueError:
            how = f"signal {-code}"
    else:
        how = f"exit code {code}"
    tail = stderr.decode(errors="replace").strip().splitlines()[-3:]
    return f"the decoder process died ({how})" + (f": {' | '.join(tail)}" if tail else "")
