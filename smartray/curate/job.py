"""Group near-duplicates: `smartray curate [--lake URI] [--threshold BITS] [--full]`.

Writes `dup_groups`: candidates whose phash + dhash are within `--threshold` bits are
confirmed on pixels (`--confirm-threshold`, `--close-confirm-threshold` for pairs within
`--close-bits`), and each group is a representative with the assets confirmed near it (no
chains); the frames of one video and an augmented child with its parent always share a
group. Re-runs add new assets incrementally.
The flags take their defaults and bounds from `CurateConfig`.
"""

from pydantic import Field

from smartray.curate import CurateConfig
from smartray.jobrun import JobSettings, field_from, run_job


class CurateJob(JobSettings):
    """Near-duplicate groups of the lake's assets."""

    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")
    threshold: int = field_from(CurateConfig, "threshold", description="largest distance, bits")
    max_hash_bits: int = field_from(
        CurateConfig, "max_hash_bits", description="largest distance in phash or dhash alone"
    )
    bands: int = field_from(CurateConfig, "bands", description="LSH bands (more: higher recall)")
    band_bits: int = field_from(CurateConfig, "band_bits", description="bits per band")
    tasks: int = field_from(
        CurateConfig, "tasks", description="Ray tasks for the bands (0: one per CPU)"
    )
    confirm_threshold: float = field_from(
        CurateConfig, "confirm_threshold", description="smallest pixel confirmation score"
    )
    close_bits: int = field_from(
        CurateConfig, "close_bits", description="hash distance under which pairs need less"
    )
    close_confirm_threshold: float = field_from(
        CurateConfig, "close_confirm_threshold", description="confirmation score within close_bits"
    )
    max_group_share: float = field_from(
        CurateConfig, "max_group_share", description="warn when one group holds more"
    )
    full: bool = Field(False, description="regroup every asset, not only new ones")
    ray_address: str | None = Field(None, description="Ray cluster to join (default: local)")


def config(cfg: CurateJob) -> CurateConfig:
    """The library config the flags stand for."""
    return CurateConfig(
        threshold=cfg.threshold,
        max_hash_bits=cfg.max_hash_bits,
        bands=cfg.bands,
        band_bits=cfg.band_bits,
        tasks=cfg.tasks,
        confirm_threshold=cfg.confirm_threshold,
        close_bits=cfg.close_bits,
        close_confirm_threshold=cfg.close_confirm_threshold,
        max_group_share=cfg.max_group_share,
    )


def run(cfg: CurateJob) -> str:
    """Runs the grouping and returns its summary line."""
    from smartray.curate import curate  # loads Ray: not for `--help`

    return curate(config(cfg), lake=cfg.lake, full=cfg.full, ray_address=cfg.ray_address).line()


def main(argv: list[str] | None = None) -> None:
    """`smartray curate` and `python -m jobs.curate`."""
    run_job(CurateJob, argv, "smartray curate", run)
