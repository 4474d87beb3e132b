"""Settings of near-duplicate grouping (`smartray curate`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

HASHES = ("phash", "dhash")


class CurateConfig(BaseModel):
    """How near-duplicates are found.

    The defaults come from `bench/dedup.py` (BENCHMARKS.md): over phash and dhash
    together (128 bits), a threshold of 24 bits keeps variant recall at or above 0.95
    with under 1 % false pairs; 64 bands of 20 bits find pairs that far apart with
    probability 0.58 each, and the nearer pairs that most variants are almost surely.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: int = Field(24, ge=0, le=128, description="largest Hamming distance, in bits")
    bands: int = Field(96, ge=1, description="LSH bands")
    band_bits: int = Field(20, ge=4, le=32, description="bits sampled per band")
    tasks: int = Field(0, ge=0, description="Ray tasks the bands are spread over (0: per CPU)")
