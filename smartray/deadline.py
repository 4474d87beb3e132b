"""Deadlines for user code that may never return: a detector plug-in, a model factory.

A step run under `deadline(seconds, step)` that takes longer raises `StepTimeoutError`
naming the step, so the job fails (exit 1) instead of hanging. The timer is SIGALRM:
it interrupts Python code, sleeps and lock waits, which is where a stalled plug-in
usually sits (a network call without a timeout, a lock never released). A C call that
never gives the interpreter back is not interrupted. Signals reach only a process's
main thread, where Ray runs tasks and job drivers; on any other thread the step runs
without a deadline.

The handler is installed once, when the first deadline starts, and stays (replacing a
process's handler costs more than the detector call it guards on a small image); with no
deadline running it does what the default would, or hands over to the handler it replaced,
which is put back when the last deadline ends.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from types import FrameType
from typing import Any

from smartray.errors import SmartrayError

try:  # CPython's own, without the enum wrapping of signal.getsignal (0.06 µs, not 4)
    from _signal import getsignal as _getsignal  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover  (other interpreters)
    _getsignal = signal.getsignal


class StepTimeoutError(SmartrayError):
    """A step did not answer within its deadline; the run stopped, nothing was committed."""


# The deadlines running on the main thread, outermost first: (expires at, seconds, step).
_running: list[tuple[float, float, str]] = []
_replaced: Any = None  # the SIGALRM handler ours replaced (None: not installed)


def _expired(signum: int, frame: FrameType | None) -> None:
    now = time.monotonic()
    for expires_at, seconds, step in _running:  # the outermost that is due stops them all
        if expires_at <= now + 1e-3:
            raise StepTimeoutError(f"{step} did not answer within {seconds:g} s")
    if _running:  # early by the timer's granularity
        _arm(now)
        return
    if callable(_replaced):  # not ours: someone else's timer
        _replaced(signum, frame)
    elif _replaced != signal.SIG_IGN:
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGALRM)


def _arm(now: float) -> None:
    left = min(expires_at for expires_at, _, _ in _running) - now
    signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))


class _Deadline:
    __slots__ = ("foreign_left", "seconds", "step")

    def __init__(self, seconds: float, step: str) -> None:
        self.seconds, self.step, self.foreign_left = seconds, step, 0.0

    def __enter__(self) -> None:
        global _replaced
        if _getsignal(signal.SIGALRM) is not _expired:
            _replaced = signal.signal(signal.SIGALRM, _expired)
        now = time.monotonic()
        _running.append((now + self.seconds, self.seconds, self.step))
        if len(_running) == 1:  # a timer someone else armed is put back afterwards
            self.foreign_left = signal.setitimer(signal.ITIMER_REAL, self.seconds)[0]
        else:
            _arm(now)

    def __exit__(self, *exc: object) -> None:
        _running.pop()
        if _running:
            _arm(time.monotonic())
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        if _replaced is not None and _replaced != signal.SIG_DFL:
            signal.signal(signal.SIGALRM, _replaced)
        if self.foreign_left:
            signal.setitimer(signal.ITIMER_REAL, self.foreign_left)


class _NoDeadline:
    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NONE = _NoDeadline()


def deadline(seconds: float | None, step: str) -> _Deadline | _NoDeadline:
    """A context manager: runs its body; raises `StepTimeoutError` if it takes longer.

    Args:
        seconds: The deadline (None: none).
        step: What runs, for the message: "detector 'mymod:Slow'".

    Raises:
        StepTimeoutError: "{step} did not answer within {seconds} s". Deadlines nest: the
            outermost one that is due stops the body, whatever an inner one says.
    """
    if seconds is None or threading.current_thread() is not threading.main_thread():
        return _NONE
    return _Deadline(seconds, step)
