"""Chips: the pixels of one tile, with their validity mask and georeferencing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from fieldtruth.imagery.grid import Tile


@dataclass(frozen=True)
class Chip:
    """The pixels of one tile (core + halo) on the tile grid.

    Attributes:
        data: float32 ``(bands, h, w)`` raw values (reflectance x 10000 for Sentinel-2), not normalised.
        valid: bool ``(h, w)``, True where every band holds data.
        transform: pixel -> CRS coordinates of ``data``.
        crs: CRS of the tile grid.
        tile_id: id of the tile the chip belongs to.
        band_names: names of the bands in ``data``, in order.
    """

    data: np.ndarray
    valid: np.ndarray
    transform: Affine
    crs: CRS
    tile_id: str
    band_names: tuple[str, ...]

    @property
    def valid_fraction(self) -> float:
        """Fraction of the chip's pixels that hold data."""
        return float(self.valid.mean()) if self.valid.size else 0.0

    def crop(self, tile: Tile) -> Chip:
        """The part of this chip under ``tile``'s halo window (a tile of the same grid, inside this chip),
        as a chip of its own with copied, contiguous arrays.

        Raises:
            ValueError: the tile's window is not on this chip's pixels or reaches outside it.
        """
        col, row = ~self.transform * (tile.halo.left, tile.halo.top)
        r0, c0 = round(row), round(col)
        rows, cols = tile.shape
        if (abs(row - r0) > 1e-6 or abs(col - c0) > 1e-6 or r0 < 0 or c0 < 0
                or r0 + rows > self.valid.shape[0] or c0 + cols > self.valid.shape[1]):
            raise ValueError(f"tile {tile.id!r} at pixel ({row:g}, {col:g}), {rows} x {cols}, is not inside "
                             f"chip {self.tile_id!r} ({self.valid.shape[0]} x {self.valid.shape[1]})")
        return Chip(
            self.data[:, r0 : r0 + rows, c0 : c0 + cols].copy(),
            self.valid[r0 : r0 + rows, c0 : c0 + cols].copy(),
            tile.transform,
            self.crs,
            tile.id,
            self.band_names,
        )

    def core_valid_fraction(self, halo_px: int) -> float:
        """Fraction of the core's pixels (the chip less ``halo_px`` on every side) that hold data."""
        rows, cols = self.valid.shape
        core = self.valid[halo_px : rows - halo_px, halo_px : cols - halo_px]
        return float(core.mean()) if core.size else 0.0
