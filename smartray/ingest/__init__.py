"""Ingest: folders of images into a clean, exactly-once `assets` table."""

from smartray.ingest.config import IngestConfig
from smartray.ingest.pipeline import IngestSummary, ingest

__all__ = ["IngestConfig", "IngestSummary", "ingest"]
