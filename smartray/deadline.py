"""Deadlines for user code that may never return: a detector plug-in, a model factory.

A step run under `deadline(seconds, step)` that takes longer raises `StepTimeoutError`
naming the step, so the job fails (exit 1) instead of hanging. The timer is SIGALRM:
it interrupts Python code, sleeps and lock waits, which is where a stalled plug-in
usually sits (a network call without a timeout, a lock never released). A C call that
never gives the interpreter back is not interrupted. Signals reach only a process's
main thread, where Ray runs tasks and job drivers; on any other thread the step runs
without a deadline.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from smartray.errors import SmartrayError


class StepTimeoutError(SmartrayError):
    """A step did not answer within its deadline; the run stopped, nothing was committed."""


@contextmanager
def deadline(seconds: float | None, step: str) -> Iterator[None]:
    """Runs the body; raises `StepTimeoutError` if it takes longer than `seconds`.

    Args:
        seconds: The deadline (None: none).
        step: What runs, for the message: "detector 'mymod:Slow'".

    Raises:
        StepTimeoutError: "{step} did not answer within {seconds} s". An outer deadline
            still running is re-armed with what is left of it.
    """
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(_signum: int, _frame: FrameType | None) -> None:
        raise StepTimeoutError(f"{step} did not answer within {seconds:g} s")

    old = signal.signal(signal.SIGALRM, expired)
    outer_left, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        if outer_left:
            left = outer_left - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))
