"""Synthetic Sentinel-2-like scenes with labelled brick kilns and fishing camps, for demos and tests.

A scene is a folder in the layout every fieldtruth scene has (``B02.tif B03.tif B04.tif B08.tif``,
``labels.geojson``, ``scene.json``): four uint16 bands (reflectance x 10000) at 10 m as tiled,
deflate-compressed cloud-optimised GeoTIFFs in a UTM CRS over the Gangetic plain, no nodata value.

The landscape holds field parcels, a meandering river with sand banks, villages, hamlets and roads;
the targets are Bull's trench brick kilns (reddish oval rings of about 120 x 60 m with a dark centre,
some with a chimney shadow) and fishing camps (clusters of small bright huts on a river bank); the
look-alikes (ponds, ponds ringed by trees, grey rings, red patches, hamlets of bright roofs) each share
some cue with a target, so a detector has to learn the combination. The same seed gives byte-identical
files. Everything is synthetic: no real place or person is depicted.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS

from fieldtruth.imagery._synthetic_layout import CAMP, KILN, Counts, Site, compose

log = logging.getLogger(__name__)

#: Band files written, in order, with their common names.
BAND_FILES: dict[str, str] = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir"}
#: Classes of the labelled sites.
CLASSES: tuple[str, ...] = (KILN, CAMP)
GSD_M = 10.0
_MIN_SIZE = 128


@dataclass(frozen=True)
class SyntheticScene:
    """A synthetic scene written to disk.

    Attributes:
        path: the scene folder.
        seed: the seed it was generated from.
        size: width and height in pixels.
        crs: the scene's UTM CRS.
        transform: pixel -> CRS affine transform.
        acquired: the (made-up) acquisition date, ISO 8601.
        sites: the labelled sites, boxes in continuous pixel coordinates (row, col of pixel corners).
        band_paths: band common name -> file.
        labels_path: ``labels.geojson`` (EPSG:4326 polygons with property ``class``).
        scene_json_path: ``scene.json``.
    """

    path: Path
    seed: int
    size: int
    crs: CRS
    transform: Affine
    acquired: str
    sites: tuple[Site, ...]
    band_paths: dict[str, Path]
    labels_path: Path
    scene_json_path: Path

    @property
    def counts(self) -> dict[str, int]:
        """Number of labelled sites per class."""
        return {cls: sum(1 for s in self.sites if s.label == cls) for cls in CLASSES}


def generate_scene(
    out_dir: Path,
    *,
    seed: int = 0,
    size: int = 2048,
    n_kilns: int | None = None,
    n_camps: int | None = None,
    epsg: int = 32645,
) -> SyntheticScene:
    """Generate a synthetic scene folder (bands, labels, description) from a seed.

    Args:
        out_dir: folder to write (created if missing; files in it with the same names are replaced).
        seed: seed of the generator; the same seed gives byte-identical files.
        size: width and height in pixels (10 m each); at least 128.
        n_kilns: number of brick kilns; by default 40 per 2048 x 2048 pixels (at least 3).
        n_camps: number of fishing camps; by default 24 per 2048 x 2048 pixels (at least 2).
        epsg: UTM CRS of the scene (default EPSG:32645, UTM 45N, which holds the lower Ganges plain).

    Returns:
        The scene written, with its labelled sites.

    Raises:
        ValueError: ``size`` is below 128, ``seed`` or a count is negative, or ``epsg`` is not a UTM zone.
    """
    _check_args(seed, size, n_kilns, n_camps, epsg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    crs = CRS.from_epsg(epsg)
    transform = _place_on_earth(rng, crs)
    acquired = (dt.date(2024, 1, 1) + dt.timedelta(days=int(rng.integers(0, 90)))).isoformat()
    img, sites = compose(rng, size, Counts.for_size(size, n_kilns, n_camps))
    band_paths = {}
    for i, (stem, name) in enumerate(BAND_FILES.items()):
        band_paths[name] = out_dir / f"{stem}.tif"
        _write_cog(band_paths[name], img[i], transform, crs)
    labels_path = out_dir / "labels.geojson"
    labels_path.write_text(json.dumps(_labels_geojson(sites, transform, crs)), encoding="utf-8")
    scene = SyntheticScene(
        path=out_dir,
        seed=seed,
        size=size,
        crs=crs,
        transform=transform,
        acquired=acquired,
        sites=tuple(sites),
        band_paths=band_paths,
        labels_path=labels_path,
        scene_json_path=out_dir / "scene.json",
    )
    scene.scene_json_path.write_text(json.dumps(_scene_json(scene), indent=1), encoding="utf-8")
    log.info("synthetic scene seed %d (%d px) written to %s: %s", seed, size, out_dir, scene.counts)
    return scene


def _check_args(seed: int, size: int, n_kilns: int | None, n_camps: int | None, epsg: int) -> None:
    if size < _MIN_SIZE:
        raise ValueError(f"size must be at least {_MIN_SIZE} pixels, got {size!r}; give a larger size")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    for name, value in (("n_kilns", n_kilns), ("n_camps", n_camps)):
        if value is not None and value < 0:
            raise ValueError(f"{name} must be >= 0 or None, got {value!r}")
    if not (32601 <= epsg <= 32660 or 32701 <= epsg <= 32760):
        raise ValueError(f"epsg must be a WGS 84 / UTM zone (32601-32660, 32701-32760), got {epsg!r}")


def _place_on_earth(rng: np.random.Generator, crs: CRS) -> Affine:
    """Upper-left corner near the zone's central meridian (at Ganges latitudes), snapped to 10 m."""
    zone = crs.to_epsg() % 100
    lon = -183.0 + 6.0 * zone + rng.uniform(-1.5, 1.5)
    south = crs.to_epsg() > 32700
    lat = rng.uniform(24.5, 26.0) * (-1 if south else 1)
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    return Affine(GSD_M, 0.0, round(x / GSD_M) * GSD_M, 0.0, -GSD_M, round(y / GSD_M) * GSD_M)


def _write_cog(path: Path, band: np.ndarray, transform: Affine, crs: CRS) -> None:
    profile = {
        "driver": "COG",
        "width": band.shape[1],
        "height": band.shape[0],
        "count": 1,
        "dtype": "uint16",
        "crs": crs,
        "transform": transform,
        "compress": "DEFLATE",
        "predictor": 2,
        "blocksize": 256,
        "overview_resampling": "average",
        "BIGTIFF": "NO",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(band, 1)


def _labels_geojson(sites: list[Site], transform: Affine, crs: CRS) -> dict:
    """Each site's box as an EPSG:4326 polygon (lon, lat), property ``class``."""
    to_wgs84 = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    features = []
    counters = dict.fromkeys(CLASSES, 0)
    for site in sites:
        counters[site.label] += 1
        b = site.box
        corners = [(b.col0, b.row0), (b.col1, b.row0), (b.col1, b.row1), (b.col0, b.row1), (b.col0, b.row0)]
        xs, ys = zip(*(transform * c for c in corners), strict=True)
        lons, lats = to_wgs84.transform(xs, ys)
        ring = [[round(lo, 9), round(la, 9)] for lo, la in zip(lons, lats, strict=True)]
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {"class": site.label, "site": f"{site.label}-{counters[site.label]:03d}"},
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _scene_json(scene: SyntheticScene) -> dict:
    return {
        "id": f"synthetic-seed{scene.seed}-{scene.size}",
        "acquired": scene.acquired,
        "platform": "synthetic",
        "gsd_m": GSD_M,
        "crs": scene.crs.to_string(),
        "width": scene.size,
        "height": scene.size,
        "size": [scene.size, scene.size],
        "bands": dict(BAND_FILES),
        "dtype": "uint16",
        "labels": scene.counts,
        "licence": "CC0-1.0",
        "source": f"fieldtruth synthetic generator seed {scene.seed}",
    }
