"""The detector's score as a Cloud Optimised GeoTIFF (``scan --heatmap``): what the detector saw, per cell.

One band, float32: the best class score (a sigmoid in [0, 1]) of each cell of the detector's heatmap,
on the scan grid: a cell is ``stride x stride`` pixels of the grid (the model's output stride; single
pixels when the tile size is not a multiple of it), aligned with the grid's origin, so every tile's
cells fall in whole cells of the raster. Cells without a valid pixel, of tiles that failed or were
not covered, are nodata (:data:`NODATA`), never a score of 0.

It is streamed: each worker reduces its tile's heatmap to the tile's core cells, the client keeps them
beside the tile's result (``tiles/<tile>.heat.npy``, written before the result, so a resumed scan has
the scores of every finished tile), and at the end the tiles are written one at a time into a
temporary tiled GeoTIFF, which GDAL's COG driver copies into ``heatmap.tif`` (tiled 256 x 256, DEFLATE,
overviews averaged, headers before the data). Memory depends on the tile size, not on the region.
The heatmap holds exact positions of leads: it is a restricted output, and ``fieldtruth forget``
blanks it around an erased site (:func:`plan_heatmap_erasure`).
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.windows import Window

from fieldtruth.atomicfile import atomic_path
from fieldtruth.detectors.bundle import LoadedBundle
from fieldtruth.detectors.model import output_stride
from fieldtruth.imagery.grid import Tile, TileGrid
from fieldtruth.pipelines.errors import PreflightError
from fieldtruth.review.erasure_files import FileAction
from fieldtruth.runfiles import TILE_HEATMAP_SUFFIX, RunFiles

log = logging.getLogger(__name__)

#: Value of cells without a score (no valid pixel, a failed or uncovered tile).
NODATA = -1.0
#: Side of the COG's internal tiles, in cells.
BLOCK = 256
#: COG creation options: tiled, compressed with the floating-point predictor, overviews averaged.
COG_OPTIONS = {"BLOCKSIZE": str(BLOCK), "COMPRESS": "DEFLATE", "PREDICTOR": "3", "OVERVIEWS": "AUTO",
               "OVERVIEW_RESAMPLING": "AVERAGE", "BIGTIFF": "IF_SAFER"}


def heatmap_factor(bundle: LoadedBundle, tile_size: int) -> int:
    """Pixels per side of a heatmap cell: the model's output stride when the tile size is a multiple of
    it, else 1.

    Raises:
        PreflightError: the detector has no heatmap (a box detector).
    """
    if hasattr(bundle.model, "detect"):
        raise PreflightError(f"--heatmap needs a detector with a score heatmap; "
                             f"{bundle.card.architecture!r} detects boxes: scan without --heatmap")
    stride = output_stride(bundle.model)
    return stride if tile_size % stride == 0 else 1


def core_scores(
    scores: np.ndarray, stride: int, valid: np.ndarray, tile: Tile, factor: int,
) -> np.ndarray:
    """A tile's scores over its core, in cells of ``factor`` pixels aligned with the core's corner.

    Args:
        scores: best class score per heatmap cell of the tile's chip, ``(ceil(h / stride), ...)``.
        stride: the model's output stride.
        valid: the chip's validity mask ``(h, w)``.
        tile: the tile (its core and halo fix where the core lies in the chip).
        factor: pixels per side of an output cell.

    Returns:
        float32 ``(ceil(core rows / factor), ceil(core cols / factor))``: the largest score over each
        cell's valid pixels, :data:`NODATA` where it has none.
    """
    halo, res = tile.halo_px, tile.resolution
    rows = round((tile.core.top - tile.core.bottom) / res)
    cols = round((tile.core.right - tile.core.left) / res)
    pixels = np.repeat(np.repeat(scores, stride, axis=0), stride, axis=1)[: valid.shape[0], : valid.shape[1]]
    core = np.where(valid, pixels, np.nan)[halo:halo + rows, halo:halo + cols]
    out_rows, out_cols = math.ceil(rows / factor), math.ceil(cols / factor)
    padded = np.full((out_rows * factor, out_cols * factor), np.nan, dtype=np.float32)
    padded[:rows, :cols] = core
    cells = padded.reshape(out_rows, factor, out_cols, factor)
    seen = ~np.isnan(cells).all(axis=(1, 3))
    best = np.max(np.where(np.isnan(cells), -np.inf, cells), axis=(1, 3))
    return np.where(seen, best, NODATA).astype(np.float32)


def save_tile_scores(files: RunFiles, tile_id: str, scores: np.ndarray) -> None:
    """Keep a tile's core scores beside its result (atomically; before the result is written)."""
    with atomic_path(files.tile_heatmap(tile_id)) as tmp, open(tmp, "wb") as handle:
        np.save(handle, scores.astype(np.float32, copy=False), allow_pickle=False)


def raster_shape(grid: TileGrid, factor: int) -> tuple[int, int]:
    """(rows, cols) of the heatmap of ``grid`` in cells of ``factor`` pixels."""
    left, bottom, right, top = grid.bounds
    return (math.ceil(round((top - bottom) / grid.resolution) / factor),
            math.ceil(round((right - left) / grid.resolution) / factor))


def write_heatmap(files: RunFiles, grid: TileGrid, factor: int) -> Path:
    """Assemble the tiles' scores into ``heatmap.tif``, a Cloud Optimised GeoTIFF (see the module).

    Returns:
        The heatmap's path.
    """
    rows, cols = raster_shape(grid, factor)
    transform = Affine(grid.resolution * factor, 0.0, grid.bounds.left, 0.0, -grid.resolution * factor,
                       grid.bounds.top)
    profile = {"driver": "GTiff", "width": cols, "height": rows, "count": 1, "dtype": "float32",
               "crs": grid.crs, "transform": transform, "nodata": NODATA, "tiled": True,
               "blockxsize": BLOCK, "blockysize": BLOCK, "BIGTIFF": "IF_SAFER"}
    step = grid.tile_size // factor
    with tempfile.TemporaryDirectory(dir=files.root, prefix=".heatmap-") as tmp:
        staged = Path(tmp) / "heatmap.tif"
        with rasterio.open(staged, "w", **profile) as dst:
            for tile in grid:
                window = Window(tile.col * step, tile.row * step, min(step, cols - tile.col * step),
                                min(step, rows - tile.row * step))
                dst.write(_tile_scores(files, tile.id, window), 1, window=window)
        with atomic_path(files.heatmap) as out:
            rasterio.shutil.copy(staged, out, driver="COG", **COG_OPTIONS)
    log.info("wrote %s (%d x %d cells of %g m)", files.heatmap, cols, rows, grid.resolution * factor)
    return files.heatmap


def _tile_scores(files: RunFiles, tile_id: str, window: Window) -> np.ndarray:
    """A tile's kept scores, or nodata when it has none (failed, not covered, or not yet done)."""
    shape = (int(window.height), int(window.width))
    path = files.tile_heatmap(tile_id)
    if not path.is_file():
        return np.full(shape, NODATA, dtype=np.float32)
    scores = np.load(path, allow_pickle=False)
    if scores.shape != shape:
        log.warning("scores of tile %s have shape %s, expected %s: left out of the heatmap", tile_id,
                    scores.shape, shape)
        return np.full(shape, NODATA, dtype=np.float32)
    return scores


def plan_heatmap_erasure(
    files: RunFiles, centre: tuple[float, float], radius: float, *, tile_size: int, resolution: float,
) -> list[FileAction]:
    """Plan blanking the heatmap within ``radius`` of ``centre`` (grid CRS units): the COG, and the kept
    scores of the tiles that reach there, so that neither it nor a heatmap assembled again shows where an
    erased site was. Nothing is changed here.

    Args:
        files: the run folder.
        centre: the erased site, in the scan grid's CRS.
        radius: how far around it to blank (CRS units).
        tile_size: the scan's tile core side in pixels.
        resolution: the scan grid's pixel size.
    """
    if not files.heatmap.is_file():
        return []
    with rasterio.open(files.heatmap) as src:
        transform = src.transform
    cell = abs(transform.a)
    step = tile_size // max(1, round(cell / resolution))
    actions = [FileAction(files.heatmap, files.heatmap.relative_to(files.root),
                          lambda tmp: _blank_cog(files.heatmap, tmp, centre, radius))]
    for path in sorted(files.tiles.glob(f"*{TILE_HEATMAP_SUFFIX}")):
        match = re.fullmatch(r"r(\d+)c(\d+)" + re.escape(TILE_HEATMAP_SUFFIX), path.name)
        if match is None:
            continue
        x, y = transform * (int(match[2]) * step, int(match[1]) * step)
        scores = np.load(path, allow_pickle=False)
        blanked = _blanked(scores, Affine(cell, 0.0, x, 0.0, -cell, y), centre, radius)
        if blanked is not None:
            actions.append(FileAction(path, path.relative_to(files.root), _npy_writer(blanked)))
    return actions


def _npy_writer(scores: np.ndarray) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, scores, allow_pickle=False)

    return write


def _blanked(
    scores: np.ndarray, transform: Affine, centre: tuple[float, float], radius: float,
) -> np.ndarray | None:
    """``scores`` (cells placed by ``transform``) with every cell within ``radius`` of ``centre``, or
    touching that disc, set to nodata; None when no such cell holds a score."""
    rows, cols = np.meshgrid(np.arange(scores.shape[0]) + 0.5, np.arange(scores.shape[1]) + 0.5,
                             indexing="ij")
    xs, ys = transform * (cols, rows)
    near = np.hypot(xs - centre[0], ys - centre[1]) <= radius + abs(transform.a)
    if not (near & (scores != NODATA)).any():
        return None
    return np.where(near, np.float32(NODATA), scores).astype(np.float32)


def _blank_cog(source: Path, out: Path, centre: tuple[float, float], radius: float) -> None:
    """Copy the heatmap with the cells around ``centre`` set to nodata, as a COG again (streamed: only the
    window around the site is read)."""
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".heatmap-") as tmp:
        staged = Path(tmp) / "heatmap.tif"
        rasterio.shutil.copy(source, staged, driver="GTiff", TILED="YES", BLOCKXSIZE=str(BLOCK),
                             BLOCKYSIZE=str(BLOCK), BIGTIFF="IF_SAFER")
        with rasterio.open(staged, "r+") as dst:
            window = _window_around(dst, centre, radius)
            if window is not None:
                blanked = _blanked(dst.read(1, window=window), dst.window_transform(window), centre, radius)
                if blanked is not None:
                    dst.write(blanked, 1, window=window)
        rasterio.shutil.copy(staged, out, driver="COG", **COG_OPTIONS)


def _window_around(
    dst: rasterio.io.DatasetWriter, centre: tuple[float, float], radius: float,
) -> Window | None:
    """The cells within ``radius`` of ``centre``, and one more on each side; None when off the raster."""
    inverse = ~dst.transform
    col0, row0 = inverse * (centre[0] - radius, centre[1] + radius)
    col1, row1 = inverse * (centre[0] + radius, centre[1] - radius)
    left, top = max(math.floor(col0) - 1, 0), max(math.floor(row0) - 1, 0)
    right, bottom = min(math.ceil(col1) + 1, dst.width), min(math.ceil(row1) + 1, dst.height)
    return Window(left, top, right - left, bottom - top) if right > left and bottom > top else None
