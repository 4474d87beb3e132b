"""Ingest images and videos: `smartray ingest SOURCE... [--lake URI] [video flags]`.

Images become `assets` rows; each video a `videos` row, and the frames sampled from it
`assets` rows (`media_type = frame`). Video sampling flags combine; with none, keyframes
plus scene changes are kept, at most one frame per second and 300 per video.

The flags are flat; each takes its default and bounds from the library config it fills
(`IngestConfig`, `SanitizeConfig`, `VideoSettings`, `SamplingConfig`).
"""

from pydantic import Field
from pydantic_settings import CliPositionalArg

from smartray.ingest import IngestConfig
from smartray.jobrun import JobSettings, field_from, run_job
from smartray.sanitize import SanitizeConfig
from smartray.video import SamplingConfig, VideoSettings

_DETECTORS = SanitizeConfig.model_fields["detectors"].default


class IngestJob(JobSettings):
    """Ingest folders of images into the lake, exactly once."""

    sources: CliPositionalArg[list[str]] = Field(description="folders or files to ingest")
    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")
    max_bytes: int = field_from(
        SanitizeConfig, "max_bytes", description="refuse larger files unread"
    )
    max_pixels: int = field_from(
        SanitizeConfig, "max_pixels", description="refuse larger images undecoded"
    )
    blur: bool = field_from(
        SanitizeConfig,
        "blur",
        description="blur faces (and plates with --detectors face,plate; --no-blur: off)",
    )
    detectors: list[str] = field_from(
        SanitizeConfig,
        "detectors",
        default=list(_DETECTORS),
        description="face, plate or module:Class",
    )
    detector_timeout_s: float = field_from(
        SanitizeConfig,
        "detector_timeout_s",
        description="seconds a detector may take to load or on one image; then exit 1",
    )
    block_seconds: float = field_from(
        IngestConfig, "block_seconds", description="estimated seconds of work per Ray task"
    )
    rows_per_block: int | None = field_from(
        IngestConfig, "rows_per_block", description="inputs per Ray task (default: by work)"
    )
    incremental: bool = field_from(
        IngestConfig,
        "incremental",
        description="skip inputs seen unchanged before (--no-incremental reads all)",
    )
    resanitize: bool = field_from(
        IngestConfig,
        "resanitize",
        description="sanitize the image assets whose sources lie under SOURCE again, with "
        "today's settings, replacing their rows in one run; lists sources that are gone",
    )
    ray_address: str | None = Field(None, description="Ray cluster to join (default: local)")
    fps: float | None = field_from(
        SamplingConfig, "fps", description="videos: keep frames at this rate"
    )
    keyframes: bool = field_from(
        SamplingConfig, "keyframes", description="videos: keep keyframes (intra frames)"
    )
    scenes: bool = field_from(
        SamplingConfig, "scenes", description="videos: keep frames where the scene changes"
    )
    scene_threshold: float = field_from(
        SamplingConfig, "scene_threshold", description="videos: scene change, 0-1"
    )
    min_gap_s: float = field_from(
        SamplingConfig, "min_gap_s", description="videos: seconds between kept frames"
    )
    max_frames_per_video: int = field_from(
        SamplingConfig, "max_frames", description="videos: frames kept at most"
    )
    max_video_bytes: int = field_from(VideoSettings, "max_bytes", description="videos: byte cap")
    video_timeout_s: float = field_from(
        VideoSettings, "timeout_s", description="videos: decode time limit"
    )


def config(cfg: IngestJob) -> IngestConfig:
    """The library config the flags stand for."""
    return IngestConfig(
        sources=tuple(cfg.sources),
        lake=cfg.lake,
        block_seconds=cfg.block_seconds,
        rows_per_block=cfg.rows_per_block,
        incremental=cfg.incremental,
        resanitize=cfg.resanitize,
        sanitize=SanitizeConfig(
            max_bytes=cfg.max_bytes,
            max_pixels=cfg.max_pixels,
            blur=cfg.blur,
            detectors=tuple(cfg.detectors),
            detector_timeout_s=cfg.detector_timeout_s,
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
    )


def run(cfg: IngestJob) -> str:
    """Runs the ingest and returns its summary line."""
    from smartray.ingest import ingest  # loads Ray: not for `--help`

    return ingest(config(cfg), ray_address=cfg.ray_address).line()


def main(argv: list[str] | None = None) -> None:
    """`smartray ingest` and `python -m jobs.ingest`."""
    run_job(IngestJob, argv, "smartray ingest", run)
