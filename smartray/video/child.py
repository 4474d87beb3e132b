"""The decoder child process of `smartray.video.isolated` (`python -m smartray.video.child`).

Serves requests until stdin closes, one JSON line each: `{"path", "config",
"max_pixels"}`. For each it writes to stdout, per kept frame, a JSON line
`{"frame_index", "timestamp_ms", "reasons", "shape"}` followed by the frame's raw BGR
bytes; then one final JSON line: `{"info", "decoded", "kept"}`, or
`{"rejected": {"reason", "detail"}}`.
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
    """Answers requests until stdin ends."""
    for line in stdin:
        if line.strip():
            answer(json.loads(line), stdout)


def answer(request: dict[str, object], stdout: BinaryIO) -> None:
    """Answers one request (see the module docstring)."""

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
            str(request["path"]),
            SamplingConfig.model_validate(request["config"]),
            int(str(request["max_pixels"])),
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
