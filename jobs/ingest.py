"""Ingest images and videos: `smartray ingest SOURCE... [--lake URI] [video flags]`.

Images become `assets` rows; each video a `videos` row, and the frames sampled from it
`assets` rows (`media_type = frame`). Video sampling flags combine; with none, keyframes
plus scene changes are kept, at most one frame per second and 300 per video.
"""

import gc

from pydantic import Field
from pydantic_settings import CliPositionalArg

from smartray.ingest import IngestConfig, ingest
from smartray.jobrun import JobSettings, run_job
from smartray.sanitize import SanitizeConfig
from smartray.sanitize.config import DEFAULT_MAX_BYTES
from smartray.sanitize.cv import DEFAULT_MAX_PIXELS
from smartray.video.config import DEFAULT_MAX_VIDEO_BYTES, VideoSettings
from smartray.video.sampling import SamplingConfig


class IngestJob(JobSettings):
    """Ingest folders of images into the lake, exactly once."""

    sources: CliPositionalArg[list[str]] = Field(description="folders or files to ingest")
    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")
    max_bytes: int = Field(DEFAULT_MAX_BYTES, gt=0, description="refuse larger files unread")
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, gt=0, description="refuse larger images undecoded")
    blur: bool = Field(True, description="blur faces and licence plates (--no-blur turns it off)")
    detectors: list[str] = Field(["face", "plate"], description="face, plate or module:Class")
    rows_per_block: int = Field(128, ge=1, description="inputs per Ray task")
    incremental: bool = Field(
        True, description="skip inputs seen unchanged before (--no-incremental reads all)"
    )
    ray_address: str | None = Field(None, description="Ray cluster to join (default: local)")
    fps: float | None = Field(None, gt=0, description="videos: keep frames at this rate")
    keyframes: bool = Field(False, description="videos: keep keyframes (intra frames)")
    scenes: bool = Field(False, description="videos: keep frames where the scene changes")
    scene_threshold: float = Field(0.05, gt=0, le=1, description="videos: scene change, 0-1")
    min_gap_s: float = Field(1.0, ge=0, description="videos: seconds between kept frames")
    max_frames_per_video: int = Field(300, ge=1, description="videos: frames kept at most")
    max_video_bytes: int = Field(DEFAULT_MAX_VIDEO_BYTES, gt=0, description="videos: byte cap")
    video_timeout_s: float = Field(1800.0, gt=0, description="videos: decode time limit")


def run(cfg: IngestJob) -> str:
    """Runs the ingest and returns its summary line."""
    summary = ingest(
        IngestConfig(
            sources=tuple(cfg.sources),
            lake=cfg.lake,
            rows_per_block=cfg.rows_per_block,
            incremental=cfg.incremental,
            sanitize=SanitizeConfig(
                max_bytes=cfg.max_bytes,
                max_pixels=cfg.max_pixels,
                blur=cfg.blur,
                detectors=tuple(cfg.detectors),
            ),
            video=VideoSettings(
                sampling=SamplingConfig(
                    fps=cfg.fps,
                    keyframes=cfg.keyframes,
                    scenes=cfg.scenes,
                    scene_threshold=cfg.scene_threshold,
                    min_gap_s=cfg.min_gap_s,
                    max_frames=cfg.max_frames_per_video,
                ),
                max_bytes=cfg.max_video_bytes,
                timeout_s=cfg.video_timeout_s,
            ),
        ),
        ray_address=cfg.ray_address,
    )
    line = summary.line()
    print(line, flush=True)
    return line


def main(argv: list[str] | None = None) -> None:
    """`smartray ingest` and `python -m jobs.ingest`."""
    run_job(IngestJob, argv, "smartray ingest", run)


if __name__ == "__main__":
    main()
    gc.collect()  # deltalake can abort at exit after reading a table (upstream bug)
