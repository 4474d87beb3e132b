"""smartray: an open, Ray-native data engine for data-centric computer vision."""

from smartray.tables import Lake

__version__ = "0.1.0"
__all__ = ["Lake", "__version__"]
