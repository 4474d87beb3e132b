"""The package's version, in a module of its own: any floor may read it, importing nothing."""

__version__ = "0.1.0"
