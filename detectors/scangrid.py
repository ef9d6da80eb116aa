"""Detecting on a scan's own grid, so that `fieldtruth evaluate` reports what `fieldtruth scan` finds.

A scan brings each scene onto a metric tile grid at the card's ground pixel (a UTM zone for imagery
served in Web Mercator, as the sen2ships ports are), reads every tile with a halo and keeps the
detections in the tile's core. :func:`detect_like_a_scan` does the same, in process, with the same
grid, reader and halo, and returns the detections in that grid's pixels; :func:`labels_on_grid`
brings the scene's labels onto the same pixels, so matching tolerances are in the pixels the scan saw.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import shapely
from affine import Affine
from pyproj import Transformer

from fieldtruth.detectors.bundle import LoadedBundle
from fieldtruth.detectors.labels import PixelLabel, find_label_file, read_labels
from fieldtruth.detectors.predict import PixelDetection, detect_array
from fieldtruth.imagery.chip import Chip
from fieldtruth.imagery.grid import Tile, TileGrid
from fieldtruth.imagery.read import read_block
from fieldtruth.imagery.target import grid_for_scenes
from fieldtruth.ingest.scene import Scene

#: A scan's tile core is at least this many times its halo, so halos are a small share of what is read.
CORE_PER_HALO = 6
#: Tile cores are multiples of this many pixels (a multiple of every output stride and heatmap cell).
CORE_STEP = 128
#: The least core a scan uses unless told (the fixed core of earlier versions).
MIN_CORE = 512
#: The most pixels a side of a tile's window (core and both halos) spans unless told: the model's memory
#: per tile grows with it (about 0.6 GiB a worker for the vessels ensemble at 1,336 px).
MAX_WINDOW = 1536


def default_tile_size(bundle: LoadedBundle, halo: int | None = None) -> int:
    """A scan's tile core in pixels unless told: from the receptive field, via the halo.

    The core is the least multiple of :data:`CORE_STEP` that is at least :data:`CORE_PER_HALO` times the
    halo, kept so that core and halos span at most :data:`MAX_WINDOW` pixels, and never below
    :data:`MIN_CORE`: a 311 px receptive field (halo 156) gets 1,024 px cores (the window is 1.7 times the
    core's pixels instead of 2.6 with 512 px cores); a detector whose halo is 32 px keeps 512 px cores.

    Args:
        bundle: the detector.
        halo: the scan's halo; :func:`default_halo` when None.
    """
    return core_for_halo(default_halo(bundle) if halo is None else halo)


def core_for_halo(halo: int) -> int:
    """The tile core :func:`default_tile_size` gives a scan whose halo is ``halo`` pixels."""
    if halo < 0:
        raise ValueError(f"a halo is 0 pixels or more, got {halo!r}")
    wanted = -(-CORE_PER_HALO * halo // CORE_STEP) * CORE_STEP
    fits = (MAX_WINDOW - 2 * halo) // CORE_STEP * CORE_STEP
    return max(MIN_CORE, min(wanted, fits))


def default_halo(bundle: LoadedBundle) -> int:
    """A scan's halo in pixels: the receptive field's radius plus one, at least 32.

    A core pixel's prediction then sees only pixels inside its tile, so tiled and whole-image detections
    agree exactly; neighbouring tiles overlap by twice the halo, more than the whole receptive field.
    """
    return max(32, int(bundle.card.receptive_field_px) // 2 + 1)


def scan_grid(
    bundle: LoadedBundle, scene: Scene, *, tile_size: int | None = None, halo: int | None = None,
) -> TileGrid:
    """The grid a scan of ``scene`` alone with ``bundle`` reads (the card's pixel size; the scan's tile
    core and halo when None)."""
    halo = default_halo(bundle) if halo is None else halo
    tile_size = default_tile_size(bundle, halo) if tile_size is None else tile_size
    return grid_for_scenes([scene], resolution=bundle.card.gsd_m, tile_size=tile_size, halo=halo)


def grid_transform(grid: TileGrid) -> Affine:
    """Pixel -> CRS transform of the whole grid (origin at its top-left corner)."""
    return Affine(grid.resolution, 0.0, grid.bounds.left, 0.0, -grid.resolution, grid.bounds.top)


def detect_like_a_scan(
    bundle: LoadedBundle, scene: Scene, grid: TileGrid, *, threshold: float | None = None,
    block: int | None = None,
) -> list[PixelDetection]:
    """Detect over ``grid`` tile by tile as a scan does (tiles read in the scan's blocks, the grid's default
    when ``block`` is None, so a warped scene is resampled over the same windows); positions in the grid's
    pixels, best first.

    Raises:
        ImageryReadError: a band file could not be read (the message names it).
    """
    to_pixel = ~grid_transform(grid)
    found: list[PixelDetection] = []
    for tile, chip in _chips(bundle, scene, grid, block or grid.default_block()):
        if chip.core_valid_fraction(tile.halo_px) == 0:  # as a scan does: no data in the core, no model
            continue
        for d in detect_array(bundle, chip.data, chip.valid, threshold=threshold):
            x, y = chip.transform * (d.col, d.row)
            if tile.in_core(x, y):
                col, row = to_pixel * (x, y)
                found.append(PixelDetection(row, col, d.score, d.label))
    found.sort(key=lambda d: -d.score)
    return found


def _chips(bundle: LoadedBundle, scene: Scene, grid: TileGrid, block: int) -> Iterator[tuple[Tile, Chip]]:
    for tile_block in grid.blocks(block):
        chips = read_block([scene], tile_block, tuple(bundle.card.bands))
        yield from zip(tile_block.tiles, chips, strict=True)


def labels_on_grid(folder: Path, scene: Scene, grid: TileGrid) -> list[PixelLabel]:
    """The scene folder's labels (any format :func:`read_labels` takes) in the grid's pixels.

    Labels are read onto the scene's own pixels first (COCO files are in those), then carried through
    the scene's CRS into the grid's.

    Raises:
        LabelError: the label file is missing, malformed or outside the scene.
    """
    labels = read_labels(find_label_file(folder), scene.crs, scene.transform,
                         shape=(scene.height, scene.width))
    to_grid = Transformer.from_crs(scene.crs, grid.crs, always_xy=True)
    scene_to_crs, crs_to_grid = scene.transform, ~grid_transform(grid)

    def move(coords: np.ndarray) -> np.ndarray:
        xs, ys = scene_to_crs * (coords[:, 0], coords[:, 1])
        cols, rows = crs_to_grid * to_grid.transform(xs, ys)
        return np.column_stack([cols, rows])

    return [PixelLabel(lab.label, shapely.transform(lab.geometry, move)) for lab in labels]
