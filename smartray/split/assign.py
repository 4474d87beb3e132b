"""Group-aware split assignment: pure functions over group keys, sizes and strata.

Every group (near-duplicates, a video's frames, a user column) goes whole to one split.
Without strata a group's split is where `unit_hash(seed, group)` falls among the
cumulative ratios, so it never depends on what else is in the lake. With strata
(labels), the groups of each stratum are taken in hash order and each goes to the split
furthest below its target share of that stratum's assets, so each stratum gets the
ratios as nearly as whole groups allow.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

from smartray.errors import ConfigError

_TOLERANCE = 1e-6

TOLERANCE = 0.05  # largest difference between a realized share and its ratio


def parse_ratios(text: str) -> dict[str, float]:
    """`"train=0.8,val=0.1,test=0.1"` -> {name: share}, in the order given.

    Raises:
        ConfigError: a part is not `name=number`, a name repeats, a share is negative,
            or the shares do not sum to 1.
    """
    ratios: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        name, sep, value = part.partition("=")
        name = name.strip()
        try:
            share = float(value) if sep and name else float("nan")
        except ValueError:
            share = float("nan")
        if share != share:  # nan
            raise ConfigError(f"--ratios {text!r}: {part!r} is not name=share (train=0.8,...)")
        if name in ratios:
            raise ConfigError(f"--ratios {text!r}: {name!r} appears twice")
        if share < 0:
            raise ConfigError(f"--ratios {text!r}: {name}={value} is negative")
        ratios[name] = share
    total = sum(ratios.values())
    if abs(total - 1.0) > _TOLERANCE:
        raise ConfigError(f"--ratios {text!r}: the shares sum to {total:g}, not 1")
    return ratios


def unit_hash(seed: int, key: str) -> float:
    """A number in [0, 1) fixed by (seed, key): sha256, first 8 bytes."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def by_hash(u: float, ratios: Mapping[str, float]) -> str:
    """The split whose cumulative interval holds `u`."""
    edge = 0.0
    names = list(ratios)
    for name in names:
        edge += ratios[name]
        if u < edge:
            return name
    return names[-1]


def assign_groups(
    sizes: Mapping[str, int],
    ratios: Mapping[str, float],
    seed: int,
    *,
    strata: Mapping[str, str] | None = None,
    existing: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A split for each group of `sizes` (group -> number of assets) not in `existing`.

    Args:
        sizes: Assets per group, for every group (assigned ones included).
        ratios: Split name -> share of assets.
        seed: Fixes the hash order.
        strata: Group -> stratum (its majority label); None for an unstratified split.
        existing: Groups already assigned (they keep their split and count toward the
            targets of their stratum).

    Returns:
        Group -> split, for the groups not in `existing`.
    """
    existing = existing or {}
    todo = sorted((g for g in sizes if g not in existing), key=lambda g: (unit_hash(seed, g), g))
    if strata is None:
        return {g: by_hash(unit_hash(seed, g), ratios) for g in todo}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    totals: Counter[str] = Counter()
    for g, n in sizes.items():
        totals[strata[g]] += n
        if g in existing:
            counts[strata[g]][existing[g]] += n
    out: dict[str, str] = {}
    order = list(ratios)
    for g in todo:
        stratum = strata[g]
        have = counts[stratum]
        split = max(order, key=lambda s: (ratios[s] * totals[stratum] - have[s], -order.index(s)))
        out[g] = split
        have[split] += sizes[g]
    return out


def majority(values: Sequence[str | None]) -> str:
    """The most common non-null value (ties: the smallest); "" if there is none."""
    counts = Counter(v for v in values if v is not None)
    if not counts:
        return ""
    top = max(counts.values())
    return min(v for v, c in counts.items() if c == top)
