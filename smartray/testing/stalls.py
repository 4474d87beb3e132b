"""User code that never returns, for the deadline tests (`smartray.deadline`).

Plugged in by import path, as a user's code would be: `--detectors
smartray.testing.stalls:StallsOnEachImage`, `--model smartray.testing.stalls:never_builds`.
"""

from __future__ import annotations

import threading
import time

from smartray.types import Image


class StallsOnEachImage:
    """A detector plug-in that loads at once and then sleeps on every image."""

    def __call__(self, gray: Image) -> list[tuple[int, int, int, int]]:
        """Never returns (an hour's sleep)."""
        time.sleep(3600)
        return []


class StallsWhenLoaded:
    """A detector plug-in whose constructor waits for an event nobody sets."""

    def __init__(self) -> None:
        threading.Event().wait()

    def __call__(self, gray: Image) -> list[tuple[int, int, int, int]]:
        """Finds nothing (never reached)."""
        return []


def never_builds(num_classes: int) -> object:
    """A model factory that waits on a lock it already holds."""
    lock = threading.Lock()
    lock.acquire()
    lock.acquire()
    raise AssertionError("unreachable")
