"""What one ingest task returns: the part it wrote, and one outcome per input.

Image, video and re-sanitize tasks share these types and one per-input error policy
(`each_input`): an input the lake refuses is a `rejected` outcome with its reason code,
an unexpected error costs that input alone (`internal_error`), and a configuration error
(`SmartrayError`) stops the run. The driver (`reconcile.py`) matches outcomes to the
listing; nothing travels as loose dictionaries or union schemas.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from smartray.deadline import StepTimeoutError
from smartray.errors import SmartrayError
from smartray.sources.base import SourceEntry
from smartray.tables.catalog import ASSETS
from smartray.tables.parts import PartFile, write_part
from smartray.tables.storage import LakeLocation
from smartray.types import Reason, RejectedInput

log = logging.getLogger(__name__)

NEW, KNOWN, REJECTED = "new", "known", "rejected"


@dataclass
class Outcome:
    """What became of one input.

    Attributes:
        uri: The input, as listed.
        status: `new` (its rows are in the task's part), `known` (its bytes are already an
            asset), `rejected` (a quarantine row), or `changed` (re-sanitize: the source
            holds other bytes now).
        asset_id: The sha256 of its bytes, once read (a video's is its `video_id`).
        reason: A `Reason` code when rejected.
        detail: Why, in words.
        blurred_regions: New assets only: regions blurred (a video's frames: summed).
        blurred_assets: New assets with one or more blurred regions (0 or 1; frames: summed).
    """

    uri: str
    status: str = REJECTED
    asset_id: str | None = None
    reason: str | None = None
    detail: str | None = None
    blurred_regions: int = 0
    blurred_assets: int = 0


@dataclass
class VideoOutcome(Outcome):
    """A video input's outcome: the frames it added, and its `videos` row when new.

    Attributes:
        frames: New frame rows in the task's part.
        video_row: The `videos` row of a video not in the lake yet (stream facts).
    """

    frames: int = 0
    video_row: dict[str, Any] | None = None


@dataclass
class BlockResult:
    """What one task did with its block of inputs.

    Attributes:
        part: The Parquet part of `assets` it wrote (not committed), or None.
        outcomes: One per input of the block, in the block's order.
        started: Wall-clock time (`time.time()`) the task began its first input.
        finished: Wall-clock time it returned.
    """

    part: PartFile | None
    outcomes: list[Outcome] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0


def each_input(
    entries: Iterable[SourceEntry],
    handle: Callable[[SourceEntry, Any], None],
    make: Callable[[str], Outcome] = Outcome,
    what: str = "ingesting",
) -> list[Outcome]:
    """Runs `handle(entry, outcome)` for each entry under the shared error policy.

    `handle` fills the outcome (`status`, `asset_id`, ...); an outcome starts as
    `rejected`, so an input `handle` raises on is never lost.

    Raises:
        SmartrayError: a configuration problem (a detector that does not load, or one
            that stalls: `StepTimeoutError`, the input's URI added): not the input's, so
            the task fails and the run with it.
    """
    outcomes: list[Outcome] = []
    for entry in entries:
        out = make(entry.uri)
        outcomes.append(out)
        try:
            handle(entry, out)
        except RejectedInput as r:
            out.status, out.reason, out.detail = REJECTED, str(r.reason), r.detail
        except StepTimeoutError as e:  # a stalled plug-in: the run stops, naming the input
            raise StepTimeoutError(f"{e} on {entry.uri}") from None
        except SmartrayError:
            raise
        except Exception as e:  # a decoder bug must cost one input, not the block
            log.warning("unexpected error %s %s: %r", what, entry.uri, e)
            out.status, out.reason = REJECTED, str(Reason.INTERNAL_ERROR)
            out.detail = f"{type(e).__name__}: {e}"
    return outcomes


def finish_block(
    started: float,
    outcomes: list[Outcome],
    location: LakeLocation,
    rows: list[dict[str, Any]],
    *,
    prefix: str,
) -> BlockResult:
    """Writes a block's new `assets` rows as one part (none if there are none); its result."""
    part = write_part(location, ASSETS, rows, prefix=prefix) if rows else None
    return BlockResult(part, outcomes, started=started, finished=time.time())


def blur_counts(results: Iterable[BlockResult]) -> dict[str, int]:
    """`blurred_regions` and `blurred_assets` of a run's new assets (first outcome per id)."""
    regions = assets = 0
    seen: set[str | None] = set()
    for r in results:
        for o in r.outcomes:
            if o.status == NEW and o.asset_id not in seen:
                seen.add(o.asset_id)
                regions += o.blurred_regions
                assets += o.blurred_assets
    return {"blurred_regions": regions, "blurred_assets": assets}
