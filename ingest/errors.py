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


class RefusedInputError(IngestError, ValueError):
    """The input guard refused a path, URL, address or format before anything was read from it
    (see SECURITY.md)."""


class RasterRefusedError(RefusedInputError):
    """A raster was refused before any pixel was read (format not allowed, implausible size)."""


class ProductError(IngestError, ValueError):
    """A Sentinel-2 product (``.SAFE`` folder or zip) is not in the layout or state fieldtruth reads (not
    Level-2A, bands missing, several granules, incomplete metadata)."""


class StacError(IngestError, ValueError):
    """A STAC document could not be turned into scenes (malformed, looping, too deep or too large)."""


class SectorError(IngestError):
    """Root of every error raised while taking in a labour-sector dataset."""


class SectorDeclarationError(SectorError, ValueError):
    """A sector dataset declaration (YAML) is missing, malformed or inconsistent with its file."""


class SectorDataError(SectorError, ValueError):
    """A sector dataset holds malformed rows (bad numbers, missing coordinates, out-of-range values)."""


class EmptySectorDataError(SectorError, ValueError):
    """A sector dataset file holds no rows."""


class SectorCrsError(SectorError, ValueError):
    """The declared CRS does not fit the coordinates (out of the CRS's area of use) or is missing."""


class PersonalDataError(SectorError, ValueError):
    """A kept column looks like personal data and was not declared with a reason."""


class UnsafeArchiveError(RefusedInputError):
    """A zip archive was refused before any member was read (path traversal, links, zip bomb, too many
    members): zipped shapefiles and Sentinel-2 products alike."""


class MissingDriverError(IngestError, RuntimeError):
    """The GDAL that rasterio ships lacks the driver a file needs (JPEG 2000, say)."""
