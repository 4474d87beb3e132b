"""A decoder child that segfaults after its first frame, as PyAV has on bad streams."""

import ctypes
import sys

from smartray.video import child

if __name__ == "__main__":
    out = sys.stdout.buffer

    class CrashAfterFirstFrame:
        def __init__(self):
            self.frames = 0

        def write(self, data):
            out.write(data)
            if len(data) > 1000:  # a frame's pixels went out: now crash, for real
                out.flush()
                ctypes.string_at(0)

        def flush(self):
            out.flush()

    child.serve(sys.stdin.buffer, CrashAfterFirstFrame())
