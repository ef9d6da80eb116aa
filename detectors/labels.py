"""Labels: GeoJSON site polygons (EPSG:4326) brought onto a scene's pixel grid.

A label in pixels is a shapely polygon in continuous pixel coordinates (``x`` = column, ``y`` = row,
pixel corners at integers, as rasterio's ``~transform`` gives them) with its class; its centre is the
centroid of the polygon, which is what a point detector is trained to find.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from fieldtruth.detectors.errors import LabelError

log = logging.getLogger(__name__)


class PixelLabel(NamedTuple):
    """One labelled site on a pixel grid.

    Attributes:
        label: its class.
        geometry: polygon in continuous pixel coordinates (x = column, y = row).
    """

    label: str
    geometry: BaseGeometry

    @property
    def centre(self) -> tuple[float, float]:
        """(row, col) of the polygon's centroid."""
        c = self.geometry.centroid
        return float(c.y), float(c.x)


def read_labels(path: Path, crs: CRS, transform: Affine, classes: Iterable[str] | None = None) -> list[PixelLabel]:
    """Read a GeoJSON label file (EPSG:4326, property ``class``) onto a scene's pixel grid.

    Args:
        path: the ``labels.geojson`` file.
        crs: the scene's CRS.
        transform: the scene's pixel -> CRS transform.
        classes: keep only these classes (all when None).

    Raises:
        LabelError: the file is missing or malformed, a feature has no ``class``, or a geometry is invalid.
    """
    path = Path(path)
    features = _features(path)
    keep = None if classes is None else set(classes)
    to_scene = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    inverse = ~transform
    out: list[PixelLabel] = []
    for i, feature in enumerate(features):
        props = feature.get("properties") or {}
        label = props.get("class")
        if not isinstance(label, str) or not label:
            raise LabelError(f"labels {str(path)!r}: feature {i} has no string property 'class' (got {label!r})")
        if keep is not None and label not in keep:
            continue
        try:
            geom = shape(feature["geometry"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise LabelError(f"labels {str(path)!r}: feature {i} has no usable geometry ({exc})") from exc
        pixel_geom = shapely.transform(geom, lambda xy: _lonlat_to_pixel(xy, to_scene, inverse))
        if pixel_geom.is_empty or not pixel_geom.is_valid:
            raise LabelError(f"labels {str(path)!r}: feature {i} ({label!r}) has an empty or invalid geometry")
        out.append(PixelLabel(label, pixel_geom))
    log.debug("read %d label(s) from %s", len(out), path)
    return out


def _features(path: Path) -> list[dict]:
    if not path.is_file():
        raise LabelError(f"labels {str(path)!r} do not exist; a training scene needs a labels.geojson")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabelError(f"labels {str(path)!r} are not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise LabelError(f"labels {str(path)!r}: expected a GeoJSON FeatureCollection")
    crs_name = str(((data.get("crs") or {}).get("properties") or {}).get("name", "EPSG:4326"))
    if not any(tag in crs_name.upper() for tag in ("4326", "CRS84")):
        raise LabelError(f"labels {str(path)!r} are in {crs_name!r}; expected EPSG:4326 (lon, lat) as RFC 7946 says")
    features = data.get("features")
    if not isinstance(features, list):
        raise LabelError(f"labels {str(path)!r}: 'features' must be a list")
    return features


def _lonlat_to_pixel(xy, to_scene: Transformer, inverse: Affine):  # noqa: ANN001, ANN202 - shapely callback
    x, y = to_scene.transform(xy[:, 0], xy[:, 1])
    cols = inverse.a * x + inverse.b * y + inverse.c
    rows = inverse.d * x + inverse.e * y + inverse.f
    xy = xy.copy()
    xy[:, 0], xy[:, 1] = cols, rows
    return xy
