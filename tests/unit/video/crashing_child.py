"""A decoder child that segfaults after its first frame, as PyAV has on bad streams."""

import ctypes
import sys

from smartray.video import child


class CrashAfterFirstFrame:
    """stdout for the child: once a frame's pixels went out, crash (for real)."""

    def __init__(self, out):
        self.out = out

    def write(self, data):
        self.out.write(data)
        if len(data) > 1000:
            self.out.flush()
            ctypes.string_at(0)

    def flush(self):
        self.out.flush()


if __name__ == "__main__":
    child.serve(sys.stdin.buffer, CrashAfterFirstFrame(sys.stdout.buffer))
