"""Sources: list inputs and read their bytes."""

from smartray.sources.base import Listing, ListingRejection, Reader, SourceEntry
from smartray.sources.local import LocalReader, list_local

__all__ = ["Listing", "ListingRejection", "LocalReader", "Reader", "SourceEntry", "list_local"]
