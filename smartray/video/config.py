"""Settings of video ingest (`smartray/ingest/job.py` makes its flags from them)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from smartray.video.isolated import CHILD_MODULE, DEFAULT_TIMEOUT_S
from smartray.video.sampling import SamplingConfig

DEFAULT_MAX_VIDEO_BYTES = 2 * 1024**3


class VideoSettings(BaseModel):
    """How videos are read and sampled."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sampling: SamplingConfig = SamplingConfig()
    max_bytes: int = Field(DEFAULT_MAX_VIDEO_BYTES, gt=0)
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0)
    # The module run as the decoder's child process (`python -m`): another build of the
    # decoder speaking the same protocol (`smartray.video.child`) can replace it.
    decoder_module: str = CHILD_MODULE
