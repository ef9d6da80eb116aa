"""Errors of the imagery room."""

from fieldtruth.errors import FieldtruthError


class ImageryError(FieldtruthError):
    """Root of every error raised while gridding or reading pixels."""


class ImageryReadError(ImageryError, OSError):
    """Pixels of a tile could not be read (truncated or corrupt file, failed request)."""


class GridError(ImageryError, ValueError):
    """A tile grid was asked for with impossible parameters (geographic CRS, empty AOI, bad sizes)."""
