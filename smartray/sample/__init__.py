"""Named, reproducible samples of the lake (`smartray sample`)."""

from smartray.sample.strategies import STRATEGIES

__all__ = ["STRATEGIES"]
