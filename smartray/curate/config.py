"""Settings of near-duplicate grouping (`smartray curate`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

HASHES = ("phash", "dhash")


class CurateConfig(BaseModel):
    """How near-duplicates are found.

    The defaults come from `bench/dedup.py` (BENCHMARKS.md): over phash and dhash
    together (128 bits), a threshold of 24 bits keeps variant recall at or above 0.95
    (0.96-0.97 on three seeds) with 0.8-2 % false pairs on 80 px crops; 96 bands of 20
    bits find a pair 24 bits apart with probability 0.64, 16 bits apart with 0.995.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: int = Field(24, ge=0, le=128, description="largest Hamming distance, in bits")
    bands: int = Field(96, ge=1, description="LSH bands")
    band_bits: int = Field(20, ge=4, le=32, description="bits sampled per band")
    tasks: int = Field(0, ge=0, description="Ray tasks the bands are spread over (0: per CPU)")
