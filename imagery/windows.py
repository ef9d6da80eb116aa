"""Windows of a scene: bounded pieces of its own pixel grid, read with their validity and written as
scene folders.

A training dataset cut from large scenes (a Sentinel-2 tile is 10,980 pixels a side) keeps pieces of at
most :data:`MAX_WINDOW_PX` pixels a side, on the scene's own pixels (no resampling): a window is a
:class:`~fieldtruth.imagery.grid.Tile` without halo of a grid laid over the scene, and is read like any
tile (:func:`~fieldtruth.imagery.read.read_chip`: nodata, implausible values and, where the scene has
one, the scene classification layer's clouds, shadows and cirrus are invalid and hold 0).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import rasterio

from fieldtruth.imagery.chip import Chip
from fieldtruth.imagery.errors import GridError
from fieldtruth.imagery.grid import Tile, TileGrid
from fieldtruth.ingest.scene import Scene

log = logging.getLogger(__name__)

#: Largest window side (pixels) a dataset cuts; 2048 px of four uint16 bands is 32 MiB in memory.
MAX_WINDOW_PX = 2048
#: Smallest window side kept at a scene's edge (a training chip is up to 128 px).
MIN_WINDOW_PX = 128
#: File names of the bands written, by common name (as Sentinel-2 products and sen2ships name them).
BAND_FILES = {"blue": "B02.tif", "green": "B03.tif", "red": "B04.tif", "nir": "B08.tif"}


def scene_windows(scene: Scene, size_px: int) -> Iterator[Tile]:
    """The windows of a scene, on its own pixels: ``size_px`` a side, those at its right and bottom edges
    cut short, and left out when a side is under :data:`MIN_WINDOW_PX` (or ``size_px`` if smaller).

    Raises:
        GridError: ``size_px`` is outside 1 .. :data:`MAX_WINDOW_PX`, or the scene's CRS is not projected.
    """
    if not 0 < size_px <= MAX_WINDOW_PX:
        raise GridError(f"a window is 1 to {MAX_WINDOW_PX} pixels a side; got {size_px!r}")
    grid = TileGrid(bounds=scene.bounds, crs=scene.crs, resolution=float(scene.resolution[0]),
                    tile_size=size_px, halo=0)
    least = min(size_px, MIN_WINDOW_PX)
    for tile in grid:
        if min(tile.shape) >= least:
            yield tile


def write_window(chip: Chip, folder: Path) -> dict[str, Path]:
    """Write a chip's bands as a scene folder's band files (tiled, deflate GeoTIFFs; uint16 where every
    value is a whole number in range, as Sentinel-2 L2A stores them, else float32; no nodata value: its
    invalid pixels hold 0, which every fieldtruth reader takes for no data).

    Returns:
        Band common name -> file written.

    Raises:
        KeyError: the chip has a band without a file name in :data:`BAND_FILES`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    data = chip.data
    whole = bool(np.all((data >= 0) & (data <= 65535) & (data == np.round(data))))
    dtype = "uint16" if whole else "float32"
    rows, cols = chip.valid.shape
    blocks = 256 if min(rows, cols) >= 256 else None
    written = {}
    for i, name in enumerate(chip.band_names):
        path = folder / BAND_FILES[name]
        profile = {"driver": "GTiff", "width": cols, "height": rows, "count": 1, "dtype": dtype,
                   "crs": chip.crs, "transform": chip.transform, "compress": "deflate",
                   **({"tiled": True, "blockxsize": blocks, "blockysize": blocks} if blocks else {})}
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data[i].astype(dtype), 1)
        written[name] = path
    log.debug("window %s written to %s (%d x %d px, %s)", chip.tile_id, folder, cols, rows, dtype)
    return written
