"""Start or join Ray for a job's driver."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator

import ray

log = logging.getLogger(__name__)

# Environment that Ray workers need the same as the driver (PERFORMANCE.md: the allocator
# settings double decode speed; OpenCV's pixel limit must be set before cv2 loads; S3
# endpoint and region). Never credentials: workers find those in their own environment,
# profile or role, and a runtime_env is visible in the dashboard.
FORWARDED_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "OPENCV_IO_MAX_IMAGE_PIXELS",
    "SMARTRAY_LOG_LEVEL",
)


def worker_env() -> dict[str, str]:
    """The driver's settings that workers need, for `runtime_env.env_vars` (no secrets).

    In a driver started by Ray's Jobs API (`smartray submit`, a KubeRay RayJob) the keys
    the job's own runtime_env already sets are left out: Ray refuses to merge the two
    when they name the same variable, and the job's value is already this process's.
    """
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    for key in _submitted_job_env():
        env.pop(key, None)
    return env


def _submitted_job_env() -> dict[str, str]:
    """The env_vars of the submitted job this driver runs in (Ray passes its config)."""
    raw = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    if not raw:
        return {}
    try:
        runtime_env = json.loads(raw).get("runtime_env") or {}
        return dict(runtime_env.get("env_vars") or {})
    except (ValueError, AttributeError):
        return {}


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connects this process to Ray; returns True if it started Ray (and should stop it).

    An already initialized Ray (a notebook, a test session) is used as it is. With an
    `address` or env `RAY_ADDRESS` (set for jobs submitted to a cluster) it joins that
    cluster; otherwise it starts a private local instance. A bare `ray.init()` could
    attach to someone else's cluster, so it is never used.
    """
    if ray.is_initialized():
        return False
    target = address or os.environ.get("RAY_ADDRESS")
    if target:
        log.info("joining Ray at %s", target)
        ray.init(address=target, runtime_env={"env_vars": worker_env()}, log_to_driver=True)
    else:
        # A local Ray's workers inherit this process's environment; a runtime_env here
        # would only delay their start (~1 s on 2 cores).
        log.info("starting a local Ray")
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False)
    return True


@contextlib.contextmanager
def connected(address: str | None = None) -> Iterator[None]:
    """`ensure_ray` for a block: a Ray started here is stopped when the block ends."""
    started = ensure_ray(address)
    try:
        yield
    finally:
        if started:
            ray.shutdown()
