"""Errors raised by the maps room."""

from fieldtruth.errors import FieldtruthError


class MapsError(FieldtruthError):
    """Root of every error the maps room raises on purpose."""


class RunFolderError(MapsError, FileNotFoundError):
    """The run folder lacks a file a map needs (``detections.parquet``, ``coverage.parquet``)."""


class MapInputError(MapsError, ValueError):
    """A map argument or a run-folder file has the wrong value or shape (tier, CRS, columns)."""


class OfflineMapError(MapsError, RuntimeError):
    """A rendered map would load something from the network, or a vendored asset is missing."""


class RiskError(MapsError):
    """Root of every error raised while scoring risk cells."""


class RiskConfigError(RiskError, ValueError):
    """A risk scoring config (YAML) or argument is malformed (weights, bands, cell size, k)."""


class RiskInputError(RiskError, ValueError):
    """A run-folder or area-statistics input of the risk cells has the wrong shape or is missing."""
