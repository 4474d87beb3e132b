"""Leak-free splits: whole near-duplicate groups and videos per split (`smartray split`)."""

from smartray.split.assign import assign_groups, parse_ratios, unit_hash

__all__ = ["assign_groups", "parse_ratios", "unit_hash"]
