"""Settings of an ingest run (`smartray/ingest/job.py` makes its flags from them)."""

from pydantic import BaseModel, ConfigDict, Field

from smartray.sanitize.config import SanitizeConfig
from smartray.video.config import VideoSettings


class IngestConfig(BaseModel):
    """What to ingest, where to, and how.

    Attributes:
        sources: Local folders or files.
        lake: Lake root (local path or s3://); None means env `SMARTRAY_LAKE` or ./lake.
        sanitize: Limits and sanitize settings.
        rows_per_block: Inputs per Ray task; each task writes one Parquet part.
        num_blocks: Fixed number of Ray tasks instead (None: from rows_per_block).
        incremental: Skip inputs an earlier run saw unchanged, without reading them.
        task_retries: Times Ray retries a task whose worker died.
        video: How videos are read and sampled.
        resanitize: Instead of ingesting, sanitize the image assets whose recorded
            sources lie under `sources` again, with these settings, and replace their
            rows (same `asset_id`) in one run; sources that are gone are listed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    sources: tuple[str, ...] = Field(min_length=1)
    lake: str | None = None
    sanitize: SanitizeConfig = SanitizeConfig()
    rows_per_block: int = Field(128, ge=1)
    num_blocks: int | None = Field(None, ge=1)
    incremental: bool = True
    task_retries: int = Field(2, ge=0)
    video: VideoSettings = VideoSettings()
    resanitize: bool = False
