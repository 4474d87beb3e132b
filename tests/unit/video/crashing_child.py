"""A decoder child that segfaults after its first frame, as PyAV has on bad streams."""

import ctypes
import sys

from smartray.video import child


class AfterFirstFrame:
    """stdout for the child: once a frame's pixels went out, `fault()` (for real)."""

    def __init__(self, out, fault):
        self.out = out
        self.fault = fault

    def write(self, data):
        self.out.write(data)
        if len(data) > 1000:
            self.out.flush()
            self.fault()

    def flush(self):
        self.out.flush()


if __name__ == "__main__":
    child.serve(sys.stdin.buffer, AfterFirstFrame(sys.stdout.buffer, lambda: ctypes.string_at(0)))
