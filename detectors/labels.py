"""Labels: site points, boxes or polygons brought onto a scene's pixel grid.

A scene folder holds one label file: ``labels.geojson`` / ``.gpkg`` / ``.shp`` / ``.parquet`` (any
CRS the file declares; GeoJSON without one is RFC 7946 lon/lat) with a ``class`` property, or a COCO
``labels_coco.json`` in the pixel coordinates of the scene's band rasters (every annotation belongs
to the folder's scene, whatever its ``images`` list says).

A scene with no site at all (a background scene: negatives only, e.g. land away from every point of an
inventory) says so explicitly: a GeoJSON FeatureCollection with no feature and the foreign member
``"background": true`` (:data:`BACKGROUND`). Any other label file without a feature is refused, so a label
file emptied by mistake never teaches a detector that its sites are background.

A label in pixels is a shapely geometry in continuous pixel coordinates (``x`` = column, ``y`` = row,
pixel corners at integers, as rasterio's ``~transform`` gives them) with its class; its centre is the
centroid, which is what a point detector is trained to find. Points (a kiln inventory, a field team's
GPS list) are kept as squares of a declared size (``point_size_px`` across, :data:`POINT_SIZE_PX` by
default; ``fieldtruth train --point-size-m`` declares it in metres), reprojected like any geometry, so
that matching and targets treat them like any site.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from fieldtruth.detectors.errors import LabelError

log = logging.getLogger(__name__)

#: Label file names looked for in a scene folder, in order of preference.
LABEL_FILES = ("labels.geojson", "labels.gpkg", "labels.shp", "labels.parquet", "labels.geoparquet",
               "labels_coco.json")
#: The GeoJSON member that declares a FeatureCollection with no feature a background scene.
BACKGROUND = "background"
#: Side (pixels) of the box a point label becomes.
POINT_SIZE_PX = 3.0


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


def find_label_file(folder: Path) -> Path:
    """The label file of a scene folder (see :data:`LABEL_FILES`).

    Raises:
        LabelError: the folder holds none of them.
    """
    for name in LABEL_FILES:
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    raise LabelError(f"scene folder {str(folder)!r} holds no label file; add one of {list(LABEL_FILES)!r}")


def read_labels(
    path: Path, crs: CRS, transform: Affine, classes: Iterable[str] | None = None,
    shape: tuple[int, int] | None = None, point_size_px: float = POINT_SIZE_PX,
) -> list[PixelLabel]:
    """Read a label file (vector in any declared CRS, or COCO in pixels) onto a scene's pixel grid.

    Args:
        path: the label file.
        crs: the scene's CRS.
        transform: the scene's pixel -> CRS transform.
        classes: keep only these classes (all when None).
        shape: the scene's (height, width); when given, labels wholly outside it are refused.
        point_size_px: side (pixels) of the square a point label becomes.

    Raises:
        LabelError: the file is missing, empty (and not declared background) or malformed, a feature has
            no ``class``, the file has no CRS and its coordinates are not lon/lat, a geometry is invalid,
            or labels lie outside the scene.
    """
    path = Path(path)
    if not path.is_file():
        raise LabelError(f"labels {str(path)!r} do not exist; a training scene needs a label file "
                         f"({LABEL_FILES[0]})")
    if path.suffix == ".geojson" and _check_geojson(path):
        log.debug("%s declares a background scene (no site)", path)
        return []
    if path.name.endswith("coco.json"):
        labels = _coco_labels(path)
    else:
        labels = _vector_labels(path, crs, transform, point_size_px)
    if not labels:
        raise LabelError(_NO_FEATURE.format(path=str(path)))
    if shape is not None:
        _check_inside(path, labels, shape)
    keep = None if classes is None else set(classes)
    out = [lab for lab in labels if keep is None or lab.label in keep]
    log.debug("read %d label(s) from %s", len(out), path)
    return out


def _check_inside(path: Path, labels: list[PixelLabel], shape: tuple[int, int]) -> None:
    frame = box(0, 0, shape[1], shape[0])
    outside = [i for i, lab in enumerate(labels) if not lab.geometry.intersects(frame)]
    if outside:
        first = labels[outside[0]].geometry.centroid
        raise LabelError(
            f"labels {str(path)!r}: {len(outside)} of {len(labels)} label(s) lie outside the imagery "
            f"({shape[1]} x {shape[0]} px), e.g. feature {outside[0]} at pixel (col {first.x:.0f}, "
            f"row {first.y:.0f}); "
            "check that the labels belong to this scene and declare their CRS"
        )


def _read_frame(path: Path):  # noqa: ANN202 - a GeoDataFrame
    import geopandas as gpd

    try:
        if path.suffix in (".parquet", ".geoparquet"):
            return gpd.read_parquet(path)
        return gpd.read_file(path)
    except LabelError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyogrio/pyarrow raise many kinds; all mean "unreadable"
        raise LabelError(f"labels {str(path)!r} cannot be read ({type(exc).__name__}: {exc})") from exc


_NO_FEATURE = (
    "labels {path!r} hold no feature; label at least one site, leave the scene out, or declare it a "
    'background scene (negatives only) with a GeoJSON FeatureCollection of no feature and "background": true'
)


def _check_geojson(path: Path) -> bool:
    """Check a GeoJSON label file's shape; True when it declares a background scene."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabelError(f"labels {str(path)!r} are not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise LabelError(f"labels {str(path)!r}: expected a GeoJSON FeatureCollection")
    declared = data.get(BACKGROUND, False)
    if not isinstance(declared, bool):
        raise LabelError(f"labels {str(path)!r}: {BACKGROUND!r} must be true or false, got {declared!r}")
    if data.get("features"):
        if declared:
            raise LabelError(f"labels {str(path)!r} declare a background scene but hold "
                             f"{len(data['features'])} feature(s); remove one or the other")
        return False
    if not declared:
        raise LabelError(_NO_FEATURE.format(path=str(path)))
    return True


def _vector_labels(path: Path, crs: CRS, transform: Affine, point_size_px: float) -> list[PixelLabel]:
    frame = _read_frame(path)
    if len(frame) == 0:
        return []
    if "class" not in frame.columns:
        raise LabelError(f"labels {str(path)!r}: feature 0 has no string property 'class' (columns "
                         f"{list(frame.columns)!r})")
    source_crs = frame.crs
    if source_crs is None or (path.suffix == ".geojson" and source_crs.to_epsg() == 4326):
        lon_lat = _looks_lon_lat(frame.total_bounds)
        if not lon_lat:
            raise LabelError(
                f"labels {str(path)!r} declare no CRS but their coordinates "
                f"{tuple(np.round(frame.total_bounds, 1))!r} are not lon/lat degrees; write the file with "
                "its CRS (e.g. GeoPackage) or reproject it to EPSG:4326"
            )
        source_crs = "EPSG:4326"
    to_scene = Transformer.from_crs(source_crs, crs, always_xy=True)
    inverse = ~transform
    out = []
    for i, (label, geom) in enumerate(zip(frame["class"], frame.geometry, strict=True)):
        if not isinstance(label, str) or not label:
            raise LabelError(f"labels {str(path)!r}: feature {i} has no string property 'class' (got "
                             f"{label!r})")
        if geom is None or geom.is_empty:
            raise LabelError(f"labels {str(path)!r}: feature {i} ({label!r}) has an empty geometry")
        with np.errstate(invalid="ignore", over="ignore"):
            pixel_geom = shapely.transform(geom, lambda xy: _to_pixel(xy, to_scene, inverse))
        if not np.all(np.isfinite(shapely.get_coordinates(pixel_geom))):
            raise LabelError(
                f"labels {str(path)!r}: feature {i} ({label!r}) lies outside the imagery (it cannot even be "
                f"projected to the scene's CRS); check that the labels belong to this scene and declare "
                "their CRS"
            )
        out.append(PixelLabel(label, _as_area(pixel_geom, path, i, point_size_px)))
    return out


def _looks_lon_lat(bounds: np.ndarray) -> bool:
    west, south, east, north = (float(v) for v in bounds)
    return -180.0 <= west <= east <= 180.0 and -90.0 <= south <= north <= 90.0


def _as_area(geom: BaseGeometry, path: Path, index: int, point_size_px: float) -> BaseGeometry:
    if geom.geom_type in ("Point", "MultiPoint"):
        return geom.centroid.buffer(point_size_px / 2, cap_style="square")
    if not geom.is_valid or geom.area <= 0:
        raise LabelError(f"labels {str(path)!r}: feature {index} has an invalid or zero-area geometry "
                         f"({geom.geom_type})")
    return geom


def _to_pixel(xy, to_scene: Transformer, inverse: Affine):  # noqa: ANN001, ANN202 - shapely callback
    x, y = to_scene.transform(xy[:, 0], xy[:, 1])
    xy = xy.copy()
    xy[:, 0] = inverse.a * x + inverse.b * y + inverse.c
    xy[:, 1] = inverse.d * x + inverse.e * y + inverse.f
    return xy


def _coco_labels(path: Path) -> list[PixelLabel]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabelError(f"labels {str(path)!r} are not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise LabelError(f"labels {str(path)!r}: expected a COCO object with an 'annotations' list")
    names = {c.get("id"): c.get("name") for c in data.get("categories") or [] if isinstance(c, dict)}
    out = []
    for i, ann in enumerate(data["annotations"]):
        bbox = ann.get("bbox") if isinstance(ann, dict) else None
        label = names.get(ann.get("category_id")) if isinstance(ann, dict) else None
        if not isinstance(label, str) or not isinstance(bbox, list) or len(bbox) != 4:
            raise LabelError(f"labels {str(path)!r}: annotation {i} lacks a known category or a bbox "
                             "[x, y, w, h]")
        x, y, w, h = (float(v) for v in bbox)
        if w <= 0 or h <= 0:
            raise LabelError(f"labels {str(path)!r}: annotation {i} has an empty bbox {bbox!r}")
        out.append(PixelLabel(label, box(x, y, x + w, y + h)))
    return out
