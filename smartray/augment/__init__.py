"""Augmented children of a snapshot's assets (`smartray augment`)."""

from smartray.augment.ops import OPS, child_id, parse_ops

__all__ = ["OPS", "child_id", "parse_ops"]
