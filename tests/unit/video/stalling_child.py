"""A decoder child that hangs after its first frame, as a decoder stuck on a bad stream."""

import sys
import time

from smartray.video import child
from tests.unit.video.crashing_child import AfterFirstFrame

if __name__ == "__main__":
    child.serve(sys.stdin.buffer, AfterFirstFrame(sys.stdout.buffer, lambda: time.sleep(3600)))
