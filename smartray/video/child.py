"""The decoder child process of `smartray.video.isolated` (`python -m smartray.video.child`).

Reads one JSON request on stdin: `{"path", "config", "max_pixels"}`. Writes to stdout,
for each kept frame, a JSON line `{"frame_index", "timestamp_ms", "reasons", "shape"}`
followed by the frame's raw BGR bytes; then one final JSON line: `{"info", "decoded",
"kept"}`, or `{"rejected": {"reason", "detail"}}`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import BinaryIO

from smartray.types import RejectedInput
from smartray.video.decode import SampledFrame, sample_video
from smartray.video.sampling import SamplingConfig


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Answers one request (see the module docstring)."""
    request = json.loads(stdin.read())

    def send(frame: SampledFrame) -> None:
        header = {
            "frame_index": frame.frame_index,
            "timestamp_ms": frame.timestamp_ms,
            "reasons": list(frame.reasons),
            "shape": list(frame.image.shape),
        }
        stdout.write(json.dumps(header).encode() + b"\n")
        stdout.write(frame.image.tobytes())

    try:
        result = sample_video(
            request["path"],
            SamplingConfig(**request["config"]),
            int(request["max_pixels"]),
            on_frame=send,
        )
        final = {
            "info": dataclasses.asdict(result.info),
            "decoded": result.decoded,
            "kept": result.kept,
        }
    except RejectedInput as r:
        final = {"rejected": {"reason": str(r.reason), "detail": r.detail}}
    stdout.write(json.dumps(final).encode() + b"\n")
    stdout.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
