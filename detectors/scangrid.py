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


def default_halo(bundle: LoadedBundle) -> int:
    """A scan's halo in pixels: the receptive field's radius plus one, at least 32.

    A core pixel's prediction then sees only pixels inside its tile, so tiled and whole-image detections
    agree exactly; neighbouring tiles overlap by twice the halo, more than the whole receptive field.
    """
    return max(32, int(bundle.card.receptive_field_px) // 2 + 1)


def scan_grid(bundle: LoadedBundle, scene: Scene, *, tile_size: int = 512, halo: int | None = None) -> TileGrid:
    """The grid a scan of ``scene`` alone with ``bundle`` reads (the card's pixel size)."""
    halo = default_halo(bundle) if halo is None else halo
    return grid_for_scenes([scene], resolution=bundle.card.gsd_m, tile_size=tile_size, halo=halo)


def grid_transform(grid: TileGrid) -> Affine:
    """Pixel -> CRS transform of the whole grid (origin at its top-left corner)."""
    return Affine(grid.resolution, 0.0, grid.bounds.left, 0.0, -grid.resolution, grid.bounds.top)


def detect_like_a_scan(
    bundle: LoadedBundle, scene: Scene, grid: TileGrid, *, threshold: float | None = None, block: int | None = None,
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
        yield from zip(tile_block.tiles, read_block([scene], tile_block, tuple(bundle.card.bands)), strict=True)


def labels_on_grid(folder: Path, scene: Scene, grid: TileGrid) -> list[PixelLabel]:
    """The scene folder's labels (any format :func:`read_labels` takes) in the grid's pixels.

    Labels are read onto the scene's own pixels first (COCO files are in those), then carried through
    the scene's CRS into the grid's.

    Raises:
        LabelError: the label file is missing, malformed or outside the scene.
    """
    labels = read_labels(find_label_file(folder), scene.crs, scene.transform, shape=(scene.height, scene.width))
    to_grid = Transformer.from_crs(scene.crs, grid.crs, always_xy=True)
    scene_to_crs, crs_to_grid = scene.transform, ~grid_transform(grid)

    def move(coords: np.ndarray) -> np.ndarray:
        xs, ys = scene_to_crs * (coords[:, 0], coords[:, 1])
        cols, rows = crs_to_grid * to_grid.transform(xs, ys)
        return np.column_stack([cols, rows])

    return [PixelLabel(lab.label, shapely.transform(lab.geometry, move)) for lab in labels]
