import threading
import time

import numpy as np
import pytest

from smartray.deadline import StepTimeoutError, deadline
from smartray.sanitize.detect import detect_regions, load_detectors
from smartray.train import nets


def _sleeps(seconds, step, deadline_s):
    with deadline(deadline_s, step):
        time.sleep(seconds)
    return "done"


def _nested():
    with deadline(0.3, "outer"):
        _sleeps(0.05, "inner", 5)
        time.sleep(30)


def test_a_step_past_its_deadline_is_stopped_and_named():
    t0 = time.monotonic()
    with pytest.raises(StepTimeoutError, match=r"^the step did not answer within 0.2 s$"):
        _sleeps(30, "the step", 0.2)
    assert time.monotonic() - t0 < 2


def test_a_step_within_its_deadline_is_untouched_and_the_outer_one_still_holds():
    assert _sleeps(0.05, "x", 5) == "done"
    with pytest.raises(StepTimeoutError, match="outer"):
        _nested()


def test_off_the_main_thread_the_step_runs_unbounded():
    seen = []
    worker = threading.Thread(target=lambda: seen.append(_sleeps(0.2, "x", 0.05)))
    worker.start()
    worker.join()
    assert seen == ["done"]


def test_a_stalled_detector_plugin_and_model_factory_are_named():
    name = "smartray.testing.stalls:StallsOnEachImage"
    detectors = load_detectors((name,))
    with pytest.raises(StepTimeoutError, match=f"detector '{name}' did not answer within 0.1 s"):
        detect_regions(np.zeros((8, 8), np.uint8), 1.0, detectors, (name,), timeout_s=0.1)
    with pytest.raises(StepTimeoutError, match=r"detector '.*StallsWhenLoaded' \(loading\)"):
        load_detectors(("smartray.testing.stalls:StallsWhenLoaded",), 0.1)
    factory = "smartray.testing.stalls:never_builds"
    with pytest.raises(StepTimeoutError, match=f"model factory '{factory}' did not answer"):
        nets.build(factory, 3, timeout_s=0.1)


def test_an_outer_deadline_stops_a_longer_inner_one_on_time():
    t0 = time.monotonic()
    with pytest.raises(StepTimeoutError, match=r"^outer did not answer"), deadline(0.2, "outer"):
        _sleeps(30, "inner", 20)
    assert time.monotonic() - t0 < 2


def test_a_handler_and_timer_of_the_caller_are_put_back():
    import signal

    fired = []
    old = signal.signal(signal.SIGALRM, lambda *_: fired.append(time.monotonic()))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        t0 = time.monotonic()
        assert _sleeps(0.05, "x", 5) == "done"
        assert signal.getsignal(signal.SIGALRM) is not None
        while not fired and time.monotonic() - t0 < 3:
            time.sleep(0.01)
        assert fired, "the caller's own timer did not fire"
        assert 0.3 < fired[0] - t0 < 1.5
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
