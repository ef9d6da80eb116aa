"""Errors of the ingest room: inputs that are missing, malformed or refused."""

from fieldtruth.errors import FieldtruthError


class IngestError(FieldtruthError):
    """Root of every error raised while taking inputs in."""


class InputNotFoundError(IngestError, FileNotFoundError):
    """A path given as input does not exist."""


class NotARasterError(IngestError, ValueError):
    """A file or folder was expected to hold raster bands and does not."""


class BandMismatchError(IngestError, ValueError):
    """The bands of a scene do not line up (size, CRS or transform differ)."""


class RasterRefusedError(IngestError, ValueError):
    """A raster was refused before any pixel was read (format not allowed, implausible size)."""
