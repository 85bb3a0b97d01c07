"""The REST transport: the only package that speaks HTTP."""

__version__ = "0.1.0"
