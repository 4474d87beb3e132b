"""What a source listing hands to the ingest pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from smartray.types import Reason


@dataclass(frozen=True)
class SourceEntry:
    """One input found by listing.

    Attributes:
        uri: Absolute local path or `s3://bucket/key`.
        size: Bytes, from the listing.
        mtime_ns: Modification time in ns since the epoch, if known.
        etag: Object ETag, for object stores.
        root: The source root it was found under (reads re-check containment).
    """

    uri: str
    size: int
    mtime_ns: int | None = None
    etag: str | None = None
    root: str = ""


@dataclass(frozen=True)
class ListingRejection:
    """An input refused while listing (a symlink out of the root, a failed stat)."""

    uri: str
    reason: Reason
    detail: str


@dataclass
class Listing:
    """Everything a listing found: readable entries and refused inputs."""

    entries: list[SourceEntry] = field(default_factory=list)
    rejections: list[ListingRejection] = field(default_factory=list)

    def reject(self, uri: str, reason: Reason, detail: str) -> None:
        """Records an input refused while listing."""
        self.rejections.append(ListingRejection(uri, reason, detail))

    def deduplicated(self) -> Listing:
        """The same input named twice (overlapping sources) once; sorted by URI."""
        self.entries = sorted({e.uri: e for e in self.entries}.values(), key=lambda e: e.uri)
        self.rejections = sorted({r.uri: r for r in self.rejections}.values(), key=lambda r: r.uri)
        return self

    @property
    def count(self) -> int:
        """Every input listed, refused ones included."""
        return len(self.entries) + len(self.rejections)


class Reader(Protocol):
    """Reads one listed input's bytes (picklable: it travels to Ray workers)."""

    def read(self, entry: SourceEntry, max_bytes: int | None = None) -> bytes:
        """The input's bytes, reading at most `max_bytes` + 1 of them.

        A file that grew past the limit after listing is caught without being read
        whole. Raises `RejectedInput` (`unreadable`, ...) on failure.
        """
        ...
