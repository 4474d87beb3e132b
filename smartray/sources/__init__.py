"""Sources: list inputs (local folders, `s3://` prefixes) and read their bytes."""

from __future__ import annotations

from collections.abc import Iterable

from smartray.sources.base import Listing, ListingRejection, Reader, SourceEntry
from smartray.sources.local import LocalReader, add_local, list_local
from smartray.sources.s3 import S3Reader, S3Settings, list_s3

__all__ = [
    "Listing",
    "ListingRejection",
    "LocalReader",
    "Reader",
    "S3Reader",
    "S3Settings",
    "SourceEntry",
    "SourceReader",
    "list_inputs",
    "list_local",
]


def list_inputs(sources: Iterable[str], s3: S3Settings | None = None) -> Listing:
    """Lists local folders and files and `s3://bucket/prefix` sources in one listing.

    Raises:
        SourceError: a source does not exist or cannot be listed.
    """
    listing = Listing()
    for source in sources:
        if source.startswith("s3://"):
            list_s3(source, s3 or S3Settings.from_env(), listing)
        else:
            add_local(source, listing)
    return listing.deduplicated()


class SourceReader:
    """Reads local paths and `s3://` URIs (picklable: it travels to Ray workers)."""

    def __init__(self, s3: S3Settings | None = None, local: LocalReader | None = None):
        self.local = local or LocalReader()
        self.s3 = S3Reader(s3 or S3Settings.from_env())

    def read(self, entry: SourceEntry, max_bytes: int | None = None) -> bytes:
        """The input's bytes (at most `max_bytes` + 1); `RejectedInput` on failure."""
        if entry.uri.startswith("s3://"):
            return self.s3.read(entry, max_bytes)
        return self.local.read(entry, max_bytes)
