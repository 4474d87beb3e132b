"""How an ingest run cuts its inputs into tasks: by estimated work, not by count.

A task costs Ray a fixed ~15 ms (scheduling, arguments, its result) and writes one
Parquet part, so a task should carry about a second of work: 128 tiny PNGs are 50 ms of
work (the fixed cost is then a quarter of it), 128 photos 2 s. The work of an input is
estimated from what the listing already knows (its size in bytes, and whether it comes
from S3), with the constants below measured on the development VM (BENCHMARKS.md).

Blocks shrink toward the end of the run (guided self-scheduling: each block takes at
most 1/(2 x workers) of the work still left), so the last tasks are short and no core
waits long for the tail. A byte cap keeps a block's re-encoded assets, held until its
part is written, small in memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from smartray.sources.base import SourceEntry

PER_INPUT_S = 0.0004  # read, hash, probe, metrics, re-encode of a tiny image (28 px PNG)
PER_BYTE_S = 70e-9  # decode and re-encode per source byte (a 200 KB 720p JPEG: ~15 ms)
PER_OBJECT_S = 0.003  # one S3 GET
BLUR_S = 0.1  # face detection on the reduced copy of a photo-sized image
PHOTO_BYTES = 200_000  # what a photo-sized JPEG weighs; an input of unknown size counts so
MIN_BLOCK_S = 0.2  # below this a task's fixed cost weighs more than ~10 %
MAX_BLOCK_BYTES = 128 * 2**20


def input_seconds(entry: SourceEntry, *, blur: bool) -> float:
    """Estimated seconds of one core to ingest `entry` (from its listed size)."""
    size = entry.size if entry.size >= 0 else PHOTO_BYTES
    seconds = PER_INPUT_S + PER_BYTE_S * size
    if entry.uri.startswith("s3://"):
        seconds += PER_OBJECT_S
    if blur:
        seconds += BLUR_S * min(1.0, size / PHOTO_BYTES)
    return seconds


def by_work(
    entries: Sequence[SourceEntry],
    *,
    workers: int,
    target_s: float,
    blur: bool = False,
    max_bytes: int = MAX_BLOCK_BYTES,
) -> list[list[SourceEntry]]:
    """Blocks of about `target_s` seconds of work each, shrinking toward the end.

    Args:
        entries: The inputs, in listing order (kept).
        workers: CPUs the tasks run on.
        target_s: Seconds of work a block aims at, before the tail.
        blur: Whether faces are detected (dearer inputs).
        max_bytes: Source bytes a block holds at most.
    """
    costs = [input_seconds(e, blur=blur) for e in entries]
    left = math.fsum(costs)
    blocks: list[list[SourceEntry]] = []
    i = 0
    while i < len(entries):
        goal = min(target_s, max(MIN_BLOCK_S, left / (2 * max(1, workers))))
        if left < goal + MIN_BLOCK_S / 2:  # no remnant too small for a task of its own
            goal = left
        block: list[SourceEntry] = []
        work = 0.0
        size = 0
        while i < len(entries):
            more = max(0, entries[i].size)
            if block and (work >= goal or size + more > max_bytes):
                break
            block.append(entries[i])
            work += costs[i]
            size += more
            i += 1
        blocks.append(block)
        left -= work
    return blocks


def by_count(entries: Sequence[SourceEntry], rows: int) -> list[list[SourceEntry]]:
    """Blocks of `rows` inputs each (the last may hold fewer)."""
    return [list(entries[i : i + rows]) for i in range(0, len(entries), rows)]


def into(entries: Sequence[SourceEntry], blocks: int) -> list[list[SourceEntry]]:
    """`blocks` blocks of nearly equal counts (fewer if there are fewer inputs)."""
    n = len(entries)
    k = max(1, min(blocks, n))
    cuts = [round(j * n / k) for j in range(k + 1)]
    return [list(entries[cuts[j] : cuts[j + 1]]) for j in range(k) if cuts[j + 1] > cuts[j]]
