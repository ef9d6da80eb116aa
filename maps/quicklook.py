"""Pictures of the scanned imagery for the map: a Web Mercator quicklook and a small chip per site.

The scenes come from ``run.json`` (``inputs.scenes[*]``: ``id``, ``crs``, ``bounds``, ``acquired``,
``bands`` -> ``{"href", "index"}``). Both pictures are true-colour (red, green, blue) stretched between
the 2nd and 98th percentiles of the scene's valid pixels, written as PNG ``data:`` URIs so the page
needs no tile server. Pixels without data are transparent in the quicklook.
"""

from __future__ import annotations

import base64
import io
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import rasterio
from PIL import Image
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import from_bounds
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window

from fieldtruth.ingest.rasters import open_raster

log = logging.getLogger(__name__)

RGB = ("red", "green", "blue")
WEB_MERCATOR = CRS.from_epsg(3857)
FULL_READ_MAX_PX = 40_000_000
"""Scenes up to this many pixels are read whole once for chips; larger ones window by window."""


@dataclass(frozen=True)
class SceneRef:
    """Where a scanned scene's true-colour bands are: (href, band index) for red, green, blue."""

    id: str
    crs: CRS
    bounds: tuple[float, float, float, float]
    acquired: str | None
    rgb: tuple[tuple[str, int], tuple[str, int], tuple[str, int]]


@dataclass(frozen=True)
class Quicklook:
    """A PNG ``data:`` URI in Web Mercator and its ``[[south, west], [north, east]]`` in degrees."""

    uri: str
    bounds: list[list[float]]
    size: tuple[int, int]


def scene_refs(run_json: dict[str, Any]) -> list[SceneRef]:
    """Return the scenes of ``run.json`` that have red, green and blue bands (others are skipped)."""
    refs = []
    for scene in (run_json.get("inputs") or {}).get("scenes") or []:
        try:
            bands = scene["bands"]
            rgb = tuple((str(bands[b]["href"]), int(bands[b].get("index", 1))) for b in RGB)
            refs.append(
                SceneRef(
                    id=str(scene.get("id", "")),
                    crs=CRS.from_user_input(scene["crs"]),
                    bounds=tuple(float(v) for v in scene["bounds"]),  # type: ignore[arg-type]
                    acquired=scene.get("acquired"),
                    rgb=rgb,  # type: ignore[arg-type]
                )
            )
        except (KeyError, TypeError, ValueError, rasterio.errors.CRSError) as exc:
            log.warning("scene %r in run.json lacks usable RGB bands (%s); no imagery drawn for it",
                        scene.get("id") if isinstance(scene, dict) else scene, exc)
    return refs


def png_uri(rgba: np.ndarray, colours: int | None = None) -> str:
    """Encode an (h, w, 3|4) uint8 array as a PNG ``data:`` URI, palette-quantised if ``colours``."""
    image = Image.fromarray(rgba)
    if colours:
        image = image.quantize(colours, method=Image.Quantize.FASTOCTREE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _stretch(data: np.ndarray, valid: np.ndarray,
             limits: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Scale (3, h, w) values to uint8 between per-band limits (2nd/98th percentile of valid pixels)."""
    if limits is None:
        limits = np.zeros((3, 2), dtype=np.float64)
        for i in range(3):
            values = data[i][valid]
            limits[i] = np.percentile(values, (2, 98)) if values.size else (0.0, 1.0)
    low, high = limits[:, 0, None, None], limits[:, 1, None, None]
    scaled = (data - low) / np.maximum(high - low, 1e-6) * 255.0
    return np.clip(np.nan_to_num(scaled), 0, 255).astype(np.uint8), limits


def quicklook(scenes: Sequence[SceneRef], max_px: int = 2048, colours: int | None = 256) -> Quicklook | None:
    """Mosaic the scenes' true colour onto one Web Mercator grid of at most ``max_px`` a side.

    Returns:
        The picture and its bounds, or None if there is no scene or no band could be read.
    """
    if not scenes:
        return None
    boxes = [transform_bounds(s.crs, WEB_MERCATOR, *s.bounds) for s in scenes]
    west, south = min(b[0] for b in boxes), min(b[1] for b in boxes)
    east, north = max(b[2] for b in boxes), max(b[3] for b in boxes)
    scale = max(east - west, north - south) / max_px
    width, height = max(1, math.ceil((east - west) / scale)), max(1, math.ceil((north - south) / scale))
    transform = from_bounds(west, south, east, north, width, height)
    mosaic = np.full((3, height, width), np.nan, dtype=np.float32)
    for scene in scenes:
        part = np.full_like(mosaic, np.nan)
        try:
            for i, (href, index) in enumerate(scene.rgb):
                with open_raster(href) as src:
                    reproject(rasterio.band(src, index), part[i], dst_transform=transform,
                              dst_crs=WEB_MERCATOR, src_nodata=src.nodata if src.nodata is not None else 0,
                              dst_nodata=np.nan, resampling=Resampling.average)
        except (OSError, ValueError, rasterio.errors.RasterioError) as exc:  # ValueError: guard refused
            log.warning("could not read scene %r for the quicklook (%s); drawn without it", scene.id, exc)
            continue
        fill = np.isnan(mosaic[0]) & ~np.isnan(part).any(axis=0)
        mosaic[:, fill] = part[:, fill]
    valid = ~np.isnan(mosaic).any(axis=0)
    if not valid.any():
        return None
    rgb, _ = _stretch(mosaic, valid)
    rgba = np.dstack([rgb.transpose(1, 2, 0), np.where(valid, 255, 0).astype(np.uint8)])
    to_deg = Transformer.from_crs(WEB_MERCATOR, "EPSG:4326", always_xy=True)
    (lon0, lon1), (lat0, lat1) = to_deg.transform([west, east], [south, north])
    log.info("quicklook of %d scene(s): %d x %d px", len(scenes), width, height)
    return Quicklook(png_uri(rgba, colours), [[lat0, lon0], [lat1, lon1]], (width, height))


@lru_cache(maxsize=32)
def _to_crs(wkt: str) -> Transformer:
    return Transformer.from_crs("EPSG:4326", CRS.from_wkt(wkt), always_xy=True)


def _scene_for(scenes: Sequence[SceneRef], lon: float, lat: float) -> tuple[int, float, float] | None:
    for i, scene in enumerate(scenes):
        x, y = _to_crs(scene.crs.to_wkt()).transform(lon, lat)
        w, s, e, n = scene.bounds
        if w <= x <= e and s <= y <= n:
            return i, x, y
    return None


class _BandReader:
    """Read chips of one scene's RGB bands, whole-array cached when the scene is small."""

    def __init__(self, scene: SceneRef) -> None:
        self.sources = [(open_raster(href), index) for href, index in scene.rgb]
        src = self.sources[0][0]
        self.cached = None
        if src.width * src.height <= FULL_READ_MAX_PX:
            self.cached = np.stack([s.read(i).astype(np.float32) for s, i in self.sources])
        small = np.stack([s.read(i, out_shape=(512, 512)).astype(np.float32) for s, i in self.sources])
        nodata = src.nodata if src.nodata is not None else 0
        _, self.limits = _stretch(small, (small != nodata).all(axis=0))

    def chip(self, x: float, y: float, size: int) -> np.ndarray:
        src = self.sources[0][0]
        row, col = src.index(x, y)
        r0, c0 = row - size // 2, col - size // 2
        if self.cached is not None:
            out = np.zeros((3, size, size), dtype=np.float32)
            rs, cs = max(r0, 0), max(c0, 0)
            re_, ce = min(r0 + size, self.cached.shape[1]), min(c0 + size, self.cached.shape[2])
            if re_ > rs and ce > cs:
                out[:, rs - r0:re_ - r0, cs - c0:ce - c0] = self.cached[:, rs:re_, cs:ce]
            return out
        window = Window(c0, r0, size, size)
        return np.stack([s.read(i, window=window, boundless=True, fill_value=0).astype(np.float32)
                         for s, i in self.sources])

    def close(self) -> None:
        for src, _ in self.sources:
            src.close()


def site_chips(
    scenes: Sequence[SceneRef], sites: Iterable[tuple[str, float, float]], size: int = 48,
    colours: int | None = 64,
) -> dict[str, str]:
    """Cut a ``size`` x ``size`` true-colour chip around each site from the scene that covers it.

    Args:
        scenes: The run's scenes.
        sites: ``(site_id, lon, lat)`` in EPSG:4326.
        size: Chip side in scene pixels.
        colours: Palette size of the PNG (None for full colour; a palette keeps files small).

    Returns:
        site_id -> PNG ``data:`` URI, for the sites inside a readable scene.
    """
    readers: dict[int, _BandReader | None] = {}
    chips: dict[str, str] = {}
    try:
        for site_id, lon, lat in sites:
            found = _scene_for(scenes, lon, lat)
            if found is None:
                continue
            index, x, y = found
            if index not in readers:
                try:
                    readers[index] = _BandReader(scenes[index])
                except (OSError, ValueError, rasterio.errors.RasterioError) as exc:
                    log.warning("no chips from scene %r: %s", scenes[index].id, exc)
                    readers[index] = None
            reader = readers[index]
            if reader is None:
                continue
            rgb, _ = _stretch(reader.chip(x, y, size), np.ones((size, size), bool), reader.limits)
            chips[site_id] = png_uri(rgb.transpose(1, 2, 0), colours)
    finally:
        for reader in readers.values():
            if reader is not None:
                reader.close()
    log.info("cut %d site chip(s) of %d px", len(chips), size)
    return chips
