"""OpenCV, imported once with its pixel limit set first.

OpenCV reads `OPENCV_IO_MAX_IMAGE_PIXELS` when its image codecs load, so every smartray
module imports cv2 from here. The header check in `probe.py` is the first guard; this
limit is the second. A job that raises `--max-pixels` passes the same value to its
workers' environment.
"""

import os

DEFAULT_MAX_PIXELS = 100_000_000
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(DEFAULT_MAX_PIXELS))

import cv2  # noqa: E402

__all__ = ["DEFAULT_MAX_PIXELS", "cv2", "pin_threads"]


def pin_threads() -> None:
    """Keeps OpenCV to one thread: Ray already runs one task per core.

    OpenCV's own pool ignores `OMP_NUM_THREADS`; call this inside a task or an actor's
    `__init__`, not at module level of a pickled `__main__`.
    """
    if cv2.getNumThreads() != 1:
        cv2.setNumThreads(1)
