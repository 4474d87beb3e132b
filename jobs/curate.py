"""Group near-duplicates: `smartray curate [--lake URI] [--threshold BITS] [--full]`.

Writes `dup_groups`: each asset's group is the smallest asset id of its component, where
near-duplicates (phash + dhash within `--threshold` bits), the frames of one video and
an augmented child with its parent are linked. Re-runs add new assets incrementally.
"""

import gc

from pydantic import Field

from smartray.curate.config import CurateConfig
from smartray.jobrun import JobSettings, run_job

_D = CurateConfig()


class CurateJob(JobSettings):
    """Near-duplicate groups of the lake's assets."""

    lake: str | None = Field(None, description="lake root: a folder or s3://bucket/prefix")
    threshold: int = Field(_D.threshold, ge=0, le=128, description="largest distance, bits")
    max_hash_bits: int = Field(
        _D.max_hash_bits, ge=0, le=64, description="largest distance in phash or dhash alone"
    )
    bands: int = Field(_D.bands, ge=1, description="LSH bands (more: higher recall)")
    band_bits: int = Field(_D.band_bits, ge=4, le=32, description="bits per band")
    tasks: int = Field(0, ge=0, description="Ray tasks for the bands (0: one per CPU)")
    full: bool = Field(False, description="regroup every asset, not only new ones")
    ray_address: str | None = Field(None, description="Ray cluster to join (default: local)")


def run(cfg: CurateJob) -> str:
    """Runs the grouping and returns its summary line."""
    from smartray.curate.pipeline import curate

    summary = curate(
        CurateConfig(
            threshold=cfg.threshold,
            max_hash_bits=cfg.max_hash_bits,
            bands=cfg.bands,
            band_bits=cfg.band_bits,
            tasks=cfg.tasks,
        ),
        lake=cfg.lake,
        full=cfg.full,
        ray_address=cfg.ray_address,
    )
    line = summary.line()
    print(line, flush=True)
    return line


def main(argv: list[str] | None = None) -> None:
    """`smartray curate` and `python -m jobs.curate`."""
    run_job(CurateJob, argv, "smartray curate", run)


if __name__ == "__main__":
    main()
    gc.collect()  # deltalake can abort at exit after reading a table (upstream bug)
