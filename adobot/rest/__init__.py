"""The REST transport: the only package that speaks HTTP."""

from adobot import __version__

__all__ = ["__version__"]
