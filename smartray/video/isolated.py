"""Decode videos in a child process, so a decoder crash costs that video, not the job.

PyAV has had segfaults on truncated streams that no `except` can catch; in a Ray worker
one would kill the task and every input of its block. `sample_isolated` has
`sample_video` run in a child (`python -m smartray.video.child`) that streams the kept
frames back through a pipe (a JSON header line, then the raw BGR bytes), so at most one
frame is in flight and a long video never sits in memory whole.

The child serves one video after another: each process (a Ray worker) starts one the
first time and keeps it (~0.5 s of imports saved per video). A child that dies (a
signal, an abort) or runs past the time limit is dropped, its video ends as
`RejectedInput` with reason `decoder_crash` or `decode_timeout`, and the next video
starts a new child.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
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
F_SETPIPE_SZ = 1031  # Linux fcntl: a 1 MiB pipe moves frames in fewer, larger steps
PIPE_BYTES = 1 << 20


class DecoderProcess:
    """One decoder child and the last lines of its stderr (FFmpeg's warnings)."""

    def __init__(self, module: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(os.environ, PYTHONFAULTHANDLER="1"),
        )
        with contextlib.suppress(OSError):
            fcntl.fcntl(self.stdout.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=5)
        # Drained all along: a child that warns a lot must never block on a full pipe.
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()
        self.lock = threading.Lock()

    @property
    def stdout(self) -> IO[bytes]:
        """The child's answers."""
        assert self.proc.stdout is not None
        return self.proc.stdout

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_tail.append(line.decode(errors="replace").rstrip())

    def alive(self) -> bool:
        """Whether the child still runs."""
        return self.proc.poll() is None

    def send(self, request: dict[str, Any]) -> None:
        """Sends one request (a JSON line)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()

    def kill(self) -> int | None:
        """Ends the child; returns its exit status (negative: the signal that ended it)."""
        if self.proc.poll() is None:
            self.proc.kill()
        code = self.proc.wait()
        self._drain.join(timeout=5)
        return code

    def death(self) -> str:
        """Why the child is gone, with the end of what it wrote to stderr."""
        code = self.kill()
        if code is not None and code < 0:
            try:
                how = f"signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"signal {-code}"
        else:
            how = f"exit code {code}"
        tail = [line for line in self.stderr_tail if line.strip()][-3:]
        return f"the decoder process died ({how})" + (f": {' | '.join(tail)}" if tail else "")


_CHILDREN: dict[str, DecoderProcess] = {}
_CHILDREN_LOCK = threading.Lock()


def _child(module: str) -> DecoderProcess:
    with _CHILDREN_LOCK:
        child = _CHILDREN.get(module)
        if child is None or not child.alive():
            child = _CHILDREN[module] = DecoderProcess(module)
        return child


def _drop(module: str, child: DecoderProcess) -> None:
    with _CHILDREN_LOCK:
        if _CHILDREN.get(module) is child:
            del _CHILDREN[module]


def sample_isolated(
    path: str,
    config: SamplingConfig,
    max_pixels: int,
    on_frame: Callable[[SampledFrame], None],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    child_module: str = CHILD_MODULE,
) -> SampledVideo:
    """`sample_video` in a decoder child; each kept frame goes to `on_frame` as it comes.

    Raises:
        RejectedInput: what `sample_video` raises, or `decoder_crash` if the child died,
            or `decode_timeout` if it ran past `timeout_s`. Frames already given to
            `on_frame` belong to a video that is then refused: the caller drops them.
    """
    child = _child(child_module)
    with child.lock:
        timed_out = threading.Event()

        def stop() -> None:
            timed_out.set()
            child.proc.kill()

        timer = threading.Timer(timeout_s, stop)
        timer.start()
        final: dict[str, Any] | None = None
        try:
            child.send({"path": path, "config": config.model_dump(), "max_pixels": max_pixels})
            final = _read_frames(child.stdout, on_frame)
        except BrokenPipeError:
            final = None  # it died before it read the request
        except BaseException:
            _drop(child_module, child)  # the stream is mid-answer: it cannot serve again
            child.kill()
            raise
        finally:
            timer.cancel()
        if final is None:
            _drop(child_module, child)
            if timed_out.is_set():
                child.kill()
                raise RejectedInput(
                    Reason.DECODE_TIMEOUT, f"decoding took longer than {timeout_s:g} s"
                )
            raise RejectedInput(Reason.DECODER_CRASH, child.death())
    if "rejected" in final:
        raise RejectedInput(Reason(final["rejected"]["reason"]), final["rejected"]["detail"])
    return SampledVideo(
        VideoInfo(**final["info"]), decoded=int(final["decoded"]), kept=int(final["kept"])
    )


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
        image = np.empty(record["shape"], np.uint8)
        if stdout.readinto(image.reshape(-1).data) != image.nbytes:  # type: ignore[attr-defined]
            return None
        on_frame(
            SampledFrame(
                record["frame_index"], record["timestamp_ms"], image, tuple(record["reasons"])
            )
        )
