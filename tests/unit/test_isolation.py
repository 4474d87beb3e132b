"""Process-level guarantees: Ray-free operators, and no memory blow-up on a pixel bomb."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def run_py(code, env=None):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


# The allocator settings `make` exports (PERFORMANCE.md). With them, glibc zeroes heap
# memory for calloc, so an image buffer a decoder allocates is resident at once: a
# decode of the bomb that would go unnoticed without them shows in RSS.
MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": "100000000",
    "MALLOC_TRIM_THRESHOLD_": "1000000000",
    "MALLOC_TOP_PAD_": "100000000",
}


ROOT = Path(__file__).resolve().parents[2]
# Every stage's pure operators, plus the Ray-free modules workers and the decoder child load.
OPS = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts) for p in (ROOT / "smartray").rglob("ops.py")
)
RAY_FREE = [
    *OPS,
    "smartray.sources",
    "smartray.tables",
    "smartray.ingest.video",
    "smartray.video.child",
]


def test_every_ops_module_is_found():
    assert {"smartray.sanitize.ops", "smartray.ingest.ops", "smartray.augment.ops"} <= set(RAY_FREE)


@pytest.mark.parametrize("module", RAY_FREE)
def test_operators_leave_ray_unimported(module):
    out = run_py(
        f"""
        import sys
        import {module}
        print("ray" in sys.modules)
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False", f"importing {module} imports ray"


def test_opencv_pixel_limit_is_set_before_cv2_loads():
    out = run_py(
        """
        import os
        from smartray.sanitize.cv import cv2
        print(os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"])
        """
    )
    assert out.stdout.strip() == "100000000"


def test_pixel_bomb_is_refused_without_growing_past_512_mb():
    out = run_py(
        """
        from smartray.sanitize import SanitizeConfig, sanitize_image
        from smartray.testing.files import png_bomb_header
        from smartray.types import RejectedInput
        def peak_mb():  # VmHWM starts afresh at exec, unlike ru_maxrss
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
        data = png_bomb_header(30000, 30000)
        before = peak_mb()
        try:
            sanitize_image(data, config=SanitizeConfig(), name="bomb.png")
            print("ingested")
        except RejectedInput as e:
            print(e.reason)
        after = peak_mb()
        print(after, after - before)
        """,
        env=MALLOC_ENV,
    )
    assert out.returncode == 0, out.stderr
    reason, sizes = out.stdout.strip().splitlines()
    peak_mb, growth_mb = map(int, sizes.split())
    assert reason == "too_many_pixels"
    assert peak_mb < 512, f"peak RSS {peak_mb} MB"
    assert growth_mb < 16


@pytest.mark.parametrize(
    "module", ["smartray.ingest.video", "smartray.video.child", "smartray.ingest", "jobs.ingest"]
)
def test_each_module_imports_on_its_own(module):
    """No import cycle: each module can be the first one a process loads."""
    out = run_py(f"import {module}")
    assert out.returncode == 0, out.stderr
