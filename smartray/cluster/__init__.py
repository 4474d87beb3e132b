"""Connecting to Ray: a local instance on demand, or the cluster a job was submitted to."""

from smartray.cluster.local import ensure_ray

__all__ = ["ensure_ray"]
