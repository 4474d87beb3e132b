"""Ingest: folders of images into a clean, exactly-once `assets` table.

`ingest` (the Ray pipeline) is imported on first use, so `smartray.ingest.ops` stays
importable without Ray.
"""

from typing import TYPE_CHECKING, Any

from smartray.ingest.config import IngestConfig

if TYPE_CHECKING:
    from smartray.ingest.pipeline import IngestSummary, ingest

__all__ = ["IngestConfig", "IngestSummary", "ingest"]


def __getattr__(name: str) -> Any:
    if name in ("ingest", "IngestSummary"):
        from smartray.ingest import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
