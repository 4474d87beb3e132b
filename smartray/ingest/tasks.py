"""Runs ingest blocks as Ray tasks: typed results, retries, and a poisonous input isolated.

Why Ray tasks and not a Ray Data `map_batches`: each task reads its own files (image
bytes never cross the object store), its blocks are cut by estimated work
(`blocks.py`, which Ray Data's equal-count blocks cannot express), it returns a typed
`BlockResult` rather than a union table, and a block whose worker keeps dying is split
in halves until the input that kills it stands alone. Ray Data's executor added ~0.5 s
of start (its stats and autoscaling actors) and dropped failed blocks only through
`max_errored_blocks`; the measured effect is in BENCHMARKS.md.

The arguments every task shares (settings, the lake, the reader, the known asset ids)
are put in the object store once; each task gets a reference, and the known-id array
maps zero-copy.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import ray
from ray.exceptions import NodeDiedError, OutOfMemoryError, RayTaskError, WorkerCrashedError

from smartray.cluster.local import ensure_ray
from smartray.deadline import StepTimeoutError
from smartray.errors import SmartrayError, SourceError
from smartray.ingest.outcomes import BlockResult
from smartray.sources.base import SourceEntry

log = logging.getLogger(__name__)

BlockFn = Callable[..., BlockResult]
_WORKER_DIED = (WorkerCrashedError, NodeDiedError, OutOfMemoryError)


class IngestTaskError(SmartrayError):
    """An ingest task failed for a reason other than its input (nothing was committed)."""


def run_blocks(
    blocks: Sequence[list[SourceEntry]],
    fn: BlockFn,
    kwargs: dict[str, Any],
    *,
    retries: int,
    remote_args: dict[str, Any] | None = None,
) -> tuple[list[BlockResult], dict[str, str]]:
    """Runs `fn(block, **kwargs)` for every block on Ray; returns results and crashes.

    Ray retries a task whose worker died `retries` times. A block that still fails is
    split in two halves (tried without retries: the whole block already failed every
    try), and so on down to single inputs, which get `retries` again: what kills its
    worker every time is reported as a crash (URI to why), and its block-mates are
    ingested. One poisonous input in a block of n costs about (retries + 3) x n input-runs.

    Raises:
        IngestTaskError: a task failed with an error that is not a dead worker (the lake
            cannot be written, say): the run stops before committing anything.
        StepTimeoutError: a task's step (a detector) stalled past its deadline; ditto.
    """
    options = dict(remote_args or {})
    task = ray.remote(**{**options, "max_retries": retries})(_run_block)
    half_task = ray.remote(**{**options, "max_retries": 0})(_run_block)
    shared = ray.put(kwargs)
    pending = {task.remote(fn, block, shared): block for block in blocks if block}
    results: list[BlockResult] = []
    crashes: dict[str, str] = {}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            block = pending.pop(ref)
            try:
                results.append(ray.get(ref))
            except _WORKER_DIED as e:
                if len(block) == 1:
                    uri = block[0].uri
                    crashes[uri] = f"worker died on every try: {type(e).__name__}"
                    log.error("input %s kills its worker; quarantined as worker_crash", uri)
                    continue
                log.warning("a task of %d inputs lost its worker on every try; splitting it",
                            len(block))  # fmt: skip
                mid = len(block) // 2
                for half in (block[:mid], block[mid:]):
                    runner = task if len(half) == 1 else half_task
                    pending[runner.remote(fn, half, shared)] = half
            except RayTaskError as e:
                if isinstance(e.cause, StepTimeoutError):  # it names the step and input
                    raise StepTimeoutError(str(e.cause)) from e
                first = block[0].uri
                raise IngestTaskError(
                    f"ingest task of {len(block)} input(s) from {first!r} failed: {e.cause!r}"
                ) from e
    return results, crashes


def _run_block(fn: BlockFn, block: list[SourceEntry], kwargs: dict[str, Any]) -> BlockResult:
    return fn(block, **kwargs)


def local_files_placement(entries: Sequence[SourceEntry]) -> dict[str, Any]:
    """Ray task options that keep reads of local files on the node that has them.

    Local paths name files on the driver's machine. On a cluster of several nodes the
    tasks that read them are pinned to the driver's node; on one node nothing changes.

    Raises:
        SourceError: the driver's node has no CPUs for the tasks (a KubeRay head with
            `num-cpus: "0"`, say): give the job entrypoint CPUs or use s3:// sources.
    """
    if all(e.uri.startswith("s3://") for e in entries):
        return {}
    nodes = [n for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
    if len(nodes) <= 1:
        return {}
    here = ray.get_runtime_context().get_node_id()
    cpus = next((n.get("Resources", {}).get("CPU", 0) for n in nodes if n["NodeID"] == here), 0)
    if cpus <= 0:
        raise SourceError(
            "local files are read on the driver's node, and it has no CPUs for tasks: "
            "run the driver on a worker (`entrypointNumCpus: 1` in a RayJob, "
            "`--entrypoint-num-cpus 1` with `ray job submit`) or ingest from s3://"
        )
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=here, soft=False)}


def cluster_cpus() -> int:
    """CPUs of the Ray cluster this driver is connected to (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]


def _import_worker_modules() -> int:
    import smartray.ingest.ops
    import smartray.ingest.video  # noqa: F401

    return os.getpid()


class RayUse:
    """Ray for one ingest driver: joined early when that costs nothing, else on demand.

    With Ray already running (a notebook, a test session) or a cluster to join (an
    address, env `RAY_ADDRESS`), `early()` connects and has the workers import the
    operators while the driver lists and reads the lake. A private local Ray (~4 s to
    start) is started by `need()` only once there is work. On exit, Ray is stopped if
    this object started or joined it.
    """

    def __init__(self, address: str | None = None):
        self.address = address
        self.started = self.ready = False

    def early(self) -> None:
        """Connects now if that is free (see the class)."""
        if ray.is_initialized() or self.address or os.environ.get("RAY_ADDRESS"):
            self.need()

    def need(self) -> None:
        """Connects (or starts a local Ray) if not yet done, and warms the workers up."""
        if not self.ready:
            self.started, self.ready = ensure_ray(self.address), True
            warm_up_workers()

    def __enter__(self) -> RayUse:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.started:
            ray.shutdown()


def warm_up_workers() -> None:
    """Has each CPU's worker import the ingest operators now, without waiting.

    A fresh job's workers spend ~1 s each importing before their first task; this
    overlaps that with the driver's own preparation (reading the known asset ids). The
    tasks take a CPU only while they import and are never waited on.
    """
    warm = ray.remote(num_cpus=1, max_retries=0)(_import_worker_modules)
    for _ in range(min(cluster_cpus(), 64)):
        warm.remote()
