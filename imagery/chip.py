"""Chips: the pixels of one tile, with their validity mask and georeferencing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio.crs import CRS


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

    def core_valid_fraction(self, halo_px: int) -> float:
        """Fraction of the core's pixels (the chip less ``halo_px`` on every side) that hold data."""
        rows, cols = self.valid.shape
        core = self.valid[halo_px : rows - halo_px, halo_px : cols - halo_px]
        return float(core.mean()) if core.size else 0.0
