"""Settings of near-duplicate grouping (`smartray curate`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

HASHES = ("phash", "dhash")
# The grouping rules: a curate run records them, and a run under other rules regroups
# every asset (groups made by the old rules are not extended by the new ones).
RULES = "lsh-hash+ecc-bandpass+star-v2"
# Pixel confirmation (`confirm.py`; chosen on bench/dedup.py's corpora, BENCHMARKS.md):
# a pair must reach CONFIRM_THRESHOLD, or CLOSE_CONFIRM_THRESHOLD when its hashes are at
# most CLOSE_BITS apart (strong hash evidence needs less pixel evidence).
CONFIRM_THRESHOLD = 0.993
CLOSE_BITS = 5
CLOSE_CONFIRM_THRESHOLD = 0.95


class CurateConfig(BaseModel):
    """How near-duplicates are found.

    The defaults come from `bench/dedup.py` (BENCHMARKS.md): over phash and dhash
    together (128 bits), at most 26 bits apart and at most 14 in either hash alone, keep
    variant recall at 0.954-0.959 with 0.4-0.8 % false pairs on three seeds of 80 px crops;
    96 bands of 20 bits find a pair 16 bits apart with probability 0.995.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: int = Field(26, ge=0, le=128, description="largest Hamming distance, in bits")
    max_hash_bits: int = Field(
        14, ge=0, le=64, description="largest distance in either hash alone, in bits"
    )
    bands: int = Field(96, ge=1, description="LSH bands")
    band_bits: int = Field(20, ge=4, le=32, description="bits sampled per band")
    tasks: int = Field(0, ge=0, description="Ray tasks the bands are spread over (0: per CPU)")
    confirm_threshold: float = Field(
        CONFIRM_THRESHOLD,
        ge=-1,
        le=1,
        description="smallest pixel confirmation score of a near pair (aligned band-pass "
        "correlation of the 32x32 descriptors)",
    )
    close_bits: int = Field(
        CLOSE_BITS,
        ge=0,
        le=128,
        description="pairs whose hashes are at most this many bits apart need only "
        "close_confirm_threshold",
    )
    close_confirm_threshold: float = Field(
        CLOSE_CONFIRM_THRESHOLD,
        ge=-1,
        le=1,
        description="smallest pixel confirmation score of a pair within close_bits",
    )
    max_group_share: float = Field(
        0.05, gt=0, le=1, description="warn when one group holds more than this share"
    )
