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
        block_seconds: Estimated seconds of work per Ray task (`ingest/blocks.py`); each
            task writes one Parquet part, and tasks shrink toward the end of the run.
        rows_per_block: Inputs per Ray task instead (None: by work).
        num_blocks: A fixed number of Ray tasks instead (None: by work).
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
    block_seconds: float = Field(1.5, gt=0, le=600)
    rows_per_block: int | None = Field(None, ge=1)
    num_blocks: int | None = Field(None, ge=1)
    incremental: bool = True
    task_retries: int = Field(2, ge=0)
    video: VideoSettings = VideoSettings()
    resanitize: bool = False
