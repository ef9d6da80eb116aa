"""Choosing the tile grid for scenes: a metric CRS and a pixel size, and the AOI's bounds in that CRS."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from pyproj import CRS as ProjCRS
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info
from rasterio.coords import BoundingBox
from rasterio.crs import CRS
from rasterio.warp import transform_bounds

from fieldtruth.imagery.grid import TileGrid
from fieldtruth.ingest.scene import Scene

log = logging.getLogger(__name__)

#: CRSs whose pixels are not true ground distances away from the equator; scans go to UTM instead.
_DISTORTING = {3857, 900913, 3395, 4326}


def utm_crs_for(lon: float, lat: float) -> CRS:
    """The WGS84 UTM zone CRS containing a point."""
    infos = query_utm_crs_info(
        datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat)
    )
    if not infos:
        raise ValueError(f"no UTM zone for lon/lat {(lon, lat)!r}; check the AOI is in EPSG:4326 degrees")
    return CRS.from_epsg(int(infos[0].code))


def is_metric(crs: CRS) -> bool:
    """Whether a CRS is projected in metres and keeps ground distances (not Web Mercator)."""
    if crs is None or not crs.is_projected or crs.to_epsg() in _DISTORTING:
        return False
    units = ProjCRS.from_user_input(crs.to_wkt()).axis_info[0].unit_name
    return units in ("metre", "meter")


def grid_for_scene(
    scene: Scene, *, resolution: float | None = None, tile_size: int = 512, halo: int = 32
) -> TileGrid:
    """A tile grid over a scene's footprint: the scene's own CRS if metric, else its UTM zone.

    Args:
        scene: the scene to cover.
        resolution: pixel size in metres; the scene's own where it is metric and this is None.
        tile_size: core side in pixels.
        halo: halo margin in pixels.
    """
    if is_metric(scene.crs):
        crs, bounds = scene.crs, scene.bounds
        res = resolution or float(scene.resolution[0])
    else:
        wgs84 = transform_bounds(scene.crs, "EPSG:4326", *scene.bounds)
        crs = utm_crs_for((wgs84[0] + wgs84[2]) / 2, (wgs84[1] + wgs84[3]) / 2)
        bounds = BoundingBox(*transform_bounds(scene.crs, crs, *scene.bounds, densify_pts=21))
        res = resolution or _ground_resolution(scene, bounds)
        log.info("scene %s is in %s; scanning on %s at %.2f m", scene.id, scene.crs, crs, res)
    return TileGrid(bounds=bounds, crs=crs, resolution=res, tile_size=tile_size, halo=halo)


def grid_for_scenes(
    scenes: Sequence[Scene],
    *,
    resolution: float | None = None,
    tile_size: int = 512,
    halo: int = 32,
    aoi_bounds: tuple[float, float, float, float] | None = None,
) -> TileGrid:
    """A tile grid over several scenes (or an AOI): their shared metric CRS, else the UTM zone of the centre.

    Args:
        scenes: the scenes to cover; their union is the AOI when ``aoi_bounds`` is None.
        resolution: pixel size in metres; the finest scene's when None.
        tile_size: core side in pixels.
        halo: halo margin in pixels.
        aoi_bounds: AOI as (west, south, east, north) in EPSG:4326 degrees.
    """
    if len(scenes) == 1 and aoi_bounds is None:
        return grid_for_scene(scenes[0], resolution=resolution, tile_size=tile_size, halo=halo)
    crss = {s.crs.to_wkt() for s in scenes}
    if len(crss) == 1 and is_metric(scenes[0].crs):
        crs = scenes[0].crs
    else:
        west, south, east, north = aoi_bounds or _union_wgs84(scenes)
        crs = utm_crs_for((west + east) / 2, (south + north) / 2)
    if aoi_bounds is not None:
        bounds = BoundingBox(*transform_bounds("EPSG:4326", crs, *aoi_bounds, densify_pts=21))
    else:
        boxes = [transform_bounds(s.crs, crs, *s.bounds, densify_pts=21) for s in scenes]
        bounds = BoundingBox(
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )
    res = resolution or min(
        _ground_resolution(s, BoundingBox(*transform_bounds(s.crs, crs, *s.bounds))) for s in scenes
    )
    if is_metric(scenes[0].crs) and crs == scenes[0].crs and resolution is None:
        res = float(scenes[0].resolution[0])
    return TileGrid(bounds=_snap(bounds, res), crs=crs, resolution=res, tile_size=tile_size, halo=halo)


def _union_wgs84(scenes: Sequence[Scene]) -> tuple[float, float, float, float]:
    boxes = [transform_bounds(s.crs, "EPSG:4326", *s.bounds, densify_pts=21) for s in scenes]
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _snap(bounds: BoundingBox, res: float) -> BoundingBox:
    """Grow bounds outward to whole pixels of the grid, so tiles align with the pixel lattice."""
    return BoundingBox(
        math.floor(bounds.left / res) * res,
        math.floor(bounds.bottom / res) * res,
        math.ceil(bounds.right / res) * res,
        math.ceil(bounds.top / res) * res,
    )


def ground_resolution(scene: Scene) -> float:
    """A scene's pixel size on the ground in metres: its own where its CRS is metric, else measured
    across its width in the UTM zone of its centre (a Web Mercator pixel of "10 m" is about 5.8 m on the
    ground at 54 degrees north).

    Raises:
        CRSError: the scene's CRS cannot be transformed to WGS 84.
    """
    if is_metric(scene.crs):
        return float(max(abs(scene.resolution[0]), abs(scene.resolution[1])))
    west, south, east, north = transform_bounds(scene.crs, "EPSG:4326", *scene.bounds)
    crs = utm_crs_for((west + east) / 2, (south + north) / 2)
    metric = transform_bounds(scene.crs, crs, *scene.bounds, densify_pts=21)
    return _ground_resolution(scene, BoundingBox(*metric))


def _ground_resolution(scene: Scene, metric_bounds: BoundingBox) -> float:
    """Pixel size on the ground that keeps the scene's pixel count across its width."""
    return (metric_bounds.right - metric_bounds.left) / scene.width
