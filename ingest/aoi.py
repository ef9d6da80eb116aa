"""Areas of interest: a vector file (GeoJSON, GeoPackage or shapefile, in any CRS) or a bbox, in EPSG:4326.

The file passes the input guard first (:func:`fieldtruth.ingest.guard.vector_source`): its content must be
the format its suffix says, so an OGR VRT named ``.geojson`` (which would read other files or URLs) is
refused, and OGR never reaches the network.
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import shapely
from shapely.geometry.base import BaseGeometry

from fieldtruth.ingest.errors import IngestError, InputNotFoundError
from fieldtruth.ingest.guard import vector_file

log = logging.getLogger(__name__)


class AoiError(IngestError, ValueError):
    """An AOI could not be read or is unusable."""


def parse_bbox(text: str) -> BaseGeometry:
    """An AOI from ``"west,south,east,north"`` in degrees."""
    try:
        west, south, east, north = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise AoiError(f"bbox {text!r} must be four numbers 'west,south,east,north' in degrees") from exc
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise AoiError(f"bbox {text!r} is not a valid west<east, south<north box in degrees")
    return shapely.box(west, south, east, north)


def read_aoi(source: str | Path) -> BaseGeometry:
    """Read an AOI as one geometry in EPSG:4326 (the union of the file's features).

    Args:
        source: a GeoJSON, GeoPackage or shapefile with a CRS, or a bbox string ``"west,south,east,north"``.

    Raises:
        InputNotFoundError: the file does not exist.
        RefusedInputError: another suffix, not a regular file, or content of another format than the suffix.
        AoiError: the file has no CRS, no features, or no area.
    """
    text = str(source)
    if "," in text and not Path(text).exists():
        return parse_bbox(text)
    path = Path(text)
    if not path.exists():
        raise InputNotFoundError(f"AOI {text!r} does not exist; give a GeoJSON/GeoPackage file or "
                                 "'west,south,east,north'")
    source = vector_file(path, what="AOI")
    try:
        frame = gpd.read_file(source, engine="pyogrio")
    except Exception as exc:  # pyogrio raises several error kinds for unreadable files
        raise AoiError(f"AOI {text!r} could not be read as a vector file ({type(exc).__name__})") from exc
    if frame.crs is None:
        raise AoiError(f"AOI {text!r} has no CRS; declare one (GeoJSON is EPSG:4326 by definition)")
    if frame.empty:
        raise AoiError(f"AOI {text!r} holds no features")
    geometry = shapely.union_all(frame.to_crs("EPSG:4326").geometry.make_valid().to_numpy())
    if geometry.is_empty or geometry.area == 0:
        raise AoiError(f"AOI {text!r} has no area (points or lines only?); give polygons or a bbox")
    return geometry
