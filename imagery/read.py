"""Reading the pixels of one tile from a scene: only the blocks the tile overlaps, with a validity mask.

When the scene is already on the tile grid (same CRS, same pixel size, aligned origin), the tile is a
plain window read, clipped to the file and pasted into an invalid-filled array. Otherwise the bands are
warped onto the tile grid (:mod:`fieldtruth.imagery.warp`: together, where they are local files on one
grid, else each through its own :class:`rasterio.vrt.WarpedVRT`). Either way, pixels outside the
scene, nodata pixels, pixels that are not plausible numbers (NaN, infinite, or beyond
:data:`~fieldtruth.imagery.validity.PLAUSIBLE_MAX`) and (where no nodata is declared) pixels that are
zero in every band are invalid: gaps are never silently filled with zeros that a detector would take for
dark ground, and invalid pixels hold 0, never NaN. Files stay open
between tiles (:mod:`fieldtruth.imagery.handles`), so neighbouring tiles reuse GDAL's decoded blocks.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from contextlib import nullcontext

import numpy as np
import rasterio
import shapely
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds

from fieldtruth.imagery.chip import Chip
from fieldtruth.imagery.errors import ImageryReadError
from fieldtruth.imagery.grid import Tile, TileBlock
from fieldtruth.imagery.handles import shared_raster
from fieldtruth.imagery.validity import blank_invalid, has_data, plausible
from fieldtruth.imagery.warp import aligned, read_stacked, read_warped
from fieldtruth.ingest.remote import gdal_http_env, is_remote
from fieldtruth.ingest.scene import CLOUD_MASK, Scene

log = logging.getLogger(__name__)

#: Sentinel-2 SCL classes whose pixels do not show the ground: no data, saturated or defective, cloud
#: shadow, cloud (medium and high probability), thin cirrus.
SCL_UNUSABLE = (0, 1, 3, 8, 9, 10)

# GDAL's block cache defaults to 5% of RAM per process (1.2 GB on a 24 GB machine), which would make a
# scan's memory depend on the machine rather than on tile size and workers. What a scan reuses is the
# blocks a tile shares with the tiles read just before it (about 5 MB per tile of four bands), so 64 MB
# loses nothing; set GDAL_CACHEMAX yourself to override.
os.environ.setdefault("GDAL_CACHEMAX", "64")


def read_chip(scene: Scene, tile: Tile, bands: tuple[str, ...] | None = None) -> Chip:
    """Read a tile's halo window from a scene, onto the tile grid (the scene's ``band_offsets`` added to its
    valid pixels).

    Args:
        scene: the scene to read.
        tile: the tile whose halo is read.
        bands: band names in the order wanted (e.g. a model card's); all scene bands when None.

    Raises:
        KeyError: a requested band is not in the scene.
        ImageryReadError: a file could not be read (truncated, corrupt); the message names the file.
    """
    names = tuple(bands or scene.band_names)
    missing = [n for n in names if n not in scene.bands]
    if missing:
        raise KeyError(f"scene {scene.id!r} has no band(s) {missing!r}; it has {list(scene.band_names)!r}")
    rows, cols = tile.shape
    data = np.zeros((len(names), rows, cols), dtype=np.float32)
    valid = np.ones((rows, cols), dtype=bool)
    remote = any(is_remote(scene.bands[n].href) for n in names)
    try:
        together = None if remote else read_stacked(scene, names, tile, data)
    except RasterioError:  # read band by band below, so that the error names the band that fails
        together = None
    if together is not None:
        valid &= together
    for i, name in enumerate(names if together is None else ()):
        source = scene.bands[name]
        try:
            with gdal_http_env() if remote else nullcontext():
                valid &= _read_source(source.href, source.index, tile, scene.nodata, data[i],
                                      scene.allow_hosts)
        except RasterioError as exc:
            raise ImageryReadError(f"could not read band {name!r} of tile {tile.id} from {source.href!r}: "
                                   f"{exc}") from exc
    valid &= plausible(data)
    if CLOUD_MASK in scene.bands and CLOUD_MASK not in names:
        valid &= _clear_sky(scene, tile)
    blank_invalid(data, valid)
    if scene.nodata is None:
        valid &= data.any(axis=0)
    offsets = scene.offsets_for(names)
    if offsets is not None:
        data += offsets
        blank_invalid(data, valid)
    return Chip(data, valid, tile.transform, CRS.from_user_input(tile.crs), tile.id, names)


def read_mosaic(scenes: Sequence[Scene], tile: Tile, bands: tuple[str, ...] | None = None) -> Chip:
    """Read a tile from several scenes: each pixel from the first scene (in the given order) that has it.

    Scenes that do not reach the tile are not opened. Order the scenes by preference (least cloud first).

    Raises:
        ImageryReadError: a file of a scene that reaches the tile could not be read.
    """
    halo = shapely.box(*tile.halo)
    chip: Chip | None = None
    for scene in scenes:
        if not _footprint(scene.crs.to_wkt(), tuple(scene.bounds), tile.crs).intersects(halo):
            continue
        part = read_chip(scene, tile, bands)
        if chip is None:
            chip = part
        else:
            fill = part.valid & ~chip.valid
            chip.data[:, fill] = part.data[:, fill]
            chip.valid[fill] = True
        if chip.valid.all():
            break
    if chip is None:
        rows, cols = tile.shape
        names = tuple(bands or scenes[0].band_names)
        chip = Chip(np.zeros((len(names), rows, cols), np.float32), np.zeros((rows, cols), bool),
                    tile.transform, CRS.from_user_input(tile.crs), tile.id, names)
    return chip


def read_block(scenes: Sequence[Scene], block: TileBlock, bands: tuple[str, ...] | None = None) -> list[Chip]:
    """Read a block's window once (as :func:`read_mosaic`) and cut it into the chips of its tiles.

    Each file block under the window is decoded once, instead of once for every tile whose halo it
    touches. A tile's chip is the same whichever block it is read in, as the window is the block's whole
    grid cell (see :meth:`TileGrid.blocks`).

    Raises:
        ImageryReadError: a file of a scene that reaches the window could not be read.
    """
    whole = read_mosaic(scenes, block.window, bands)
    return [whole.crop(tile) for tile in block.tiles]


def read_overview(scene: Scene, bands: tuple[str, ...],
                  max_side: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """The whole scene at most ``max_side`` pixels on its longer side (the centre pixel of each n x n cell,
    n the smallest integer that fits; GDAL reads overviews where the files have them), as stored, and its
    validity.

    Meant for scene-wide statistics: the pixels taken depend on the scene alone, not on any tile grid.

    Returns:
        float32 ``(bands, h, w)`` values as stored, without ``band_offsets``, and bool ``(h, w)``:
        plausible numbers (:func:`~fieldtruth.imagery.validity.plausible`), not nodata, not zero in every
        band, and clear sky where the scene has a cloud mask.

    Raises:
        KeyError: a requested band is not in the scene.
        ImageryReadError: a file could not be read (the message names it).
    """
    missing = [n for n in bands if n not in scene.bands]
    if missing:
        raise KeyError(f"scene {scene.id!r} has no band(s) {missing!r}; it has {list(scene.band_names)!r}")
    step = -(-max(scene.width, scene.height) // max_side)
    shape = (-(-scene.height // step), -(-scene.width // step))
    names = (*bands, *([CLOUD_MASK] if CLOUD_MASK in scene.bands else []))
    layers = [_read_whole(scene, name, shape) for name in names]
    data = np.stack(layers[: len(bands)]).astype(np.float32)
    valid = plausible(data, scene.nodata)
    if scene.nodata is None:
        valid &= np.any(data != 0, axis=0)
    if len(layers) > len(bands):
        valid &= ~np.isin(layers[-1], SCL_UNUSABLE)
    return data, valid


def _read_whole(scene: Scene, name: str, shape: tuple[int, int]) -> np.ndarray:
    source = scene.bands[name]
    try:
        with gdal_http_env() if is_remote(source.href) else nullcontext():
            with shared_raster(source.href, scene.allow_hosts) as dataset:
                return dataset.read(source.index, out_shape=shape, resampling=Resampling.nearest)
    except RasterioError as exc:
        raise ImageryReadError(f"could not read band {name!r} of scene {scene.id!r} from {source.href!r}: "
                               f"{exc}") from exc


@functools.lru_cache(maxsize=256)
def _footprint(scene_crs: str, bounds: tuple[float, ...], tile_crs: str) -> shapely.Polygon:
    """A scene's footprint in a tile grid's CRS: the same for every tile, so computed once per scene."""
    return shapely.box(*transform_bounds(scene_crs, tile_crs, *bounds, densify_pts=21))


def _read_source(
    href: str, index: int, tile: Tile, nodata: float | None, dest: np.ndarray,
    allow_hosts: tuple[str, ...] = (), resampling: Resampling = Resampling.bilinear,
) -> np.ndarray:
    """Read one band of a tile into ``dest`` (tile shape); return where it holds data (not nodata, NaN
    nodata included; plausibility is judged by the caller over all bands)."""
    with shared_raster(href, allow_hosts) as dataset:
        if aligned(dataset, tile):
            return _read_window(dataset, index, tile, nodata, dest)
        return read_warped(dataset, index, tile, nodata, dest, resampling)


def _clear_sky(scene: Scene, tile: Tile) -> np.ndarray:
    """Where the scene's classification band (Sentinel-2 SCL) says the ground is seen: not cloud,
    cloud shadow, cirrus, saturated or nodata. Classes are read with nearest resampling, never blended."""
    source = scene.bands[CLOUD_MASK]
    classes = np.zeros(tile.shape, dtype=np.float32)
    try:
        with gdal_http_env() if is_remote(source.href) else nullcontext():
            inside = _read_source(source.href, source.index, tile, None, classes, scene.allow_hosts,
                                  Resampling.nearest)
    except RasterioError as exc:
        raise ImageryReadError(
            f"could not read the cloud mask of tile {tile.id} from {source.href!r}: {exc}") from exc
    return inside & ~np.isin(classes, SCL_UNUSABLE)


def _read_window(
    dataset: rasterio.DatasetReader, index: int, tile: Tile, nodata: float | None, dest: np.ndarray
) -> np.ndarray:
    """Plain window read, clipped to the file, in the file's own dtype (converted once, into ``dest``)."""
    valid = np.zeros(dest.shape, dtype=bool)
    window = from_bounds(*tile.halo, transform=dataset.transform).round_offsets().round_lengths()
    if not _overlaps(window, dataset):
        return valid
    clipped = window.intersection(Window(0, 0, dataset.width, dataset.height))
    r0, c0 = int(clipped.row_off - window.row_off), int(clipped.col_off - window.col_off)
    h, w = int(clipped.height), int(clipped.width)
    pixels = dataset.read(index, window=clipped)
    dest[r0 : r0 + h, c0 : c0 + w] = pixels
    if nodata is None:
        valid[r0 : r0 + h, c0 : c0 + w] = True
    else:
        valid[r0 : r0 + h, c0 : c0 + w] = has_data(pixels, nodata)
    return valid


def _overlaps(window: Window, dataset: rasterio.DatasetReader) -> bool:
    return (
        window.col_off < dataset.width
        and window.row_off < dataset.height
        and window.col_off + window.width > 0
        and window.row_off + window.height > 0
    )
