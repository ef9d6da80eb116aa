"""Real data: sen2ships scenes (EPSG:3857) read onto a UTM tile grid keep their labels on the same pixels."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.features import rasterize
from rasterio.warp import Resampling, reproject

from fieldtruth.imagery.read import read_chip
from fieldtruth.imagery.target import grid_for_scene
from fieldtruth.ingest.scene import open_scene
from fieldtruth.tests.data.shared import needs_shared_data, shared_data_root

SHIPS = shared_data_root() / "sen2ships"
pytestmark = needs_shared_data("sen2ships")


@pytest.mark.parametrize("port", ["busan", "genoa"])
def test_labels_land_on_the_same_pixels_after_reprojection_to_utm(port: str) -> None:
    scene = open_scene(SHIPS / port, hash_files=False)
    grid = grid_for_scene(scene, tile_size=2048, halo=0)
    assert grid.crs.to_epsg() in range(32601, 32661)
    tile = grid.tile(0, 0)
    chip = read_chip(scene, tile, ("nir",))
    labels = gpd.read_file(SHIPS / port / "labels.geojson")
    with rasterio.open(SHIPS / port / "B08.tif") as src:
        # The band, warped by rasterio itself onto the same grid: our read must agree with it.
        expected = np.zeros(tile.shape, dtype=np.float32)
        reproject(rasterio.band(src, 1), expected, dst_transform=tile.transform, dst_crs=grid.crs,
                  resampling=Resampling.bilinear)
        # The label boxes burnt on the source grid, then warped by rasterio (nearest) onto the tile grid...
        source_mask = rasterize(labels.to_crs(src.crs).geometry, out_shape=src.shape, transform=src.transform)
        warped_mask = np.zeros(tile.shape, dtype=np.uint8)
        reproject(source_mask, warped_mask, src_transform=src.transform, src_crs=src.crs,
                  dst_transform=tile.transform, dst_crs=grid.crs, resampling=Resampling.nearest)
    inner = chip.valid & (expected > 0)
    ours, theirs = chip.data[0][inner], expected[inner]
    # GDAL's warper approximates the transform to 1/8 pixel and rounds to uint16; allow for that only.
    assert np.corrcoef(ours, theirs)[0, 1] > 0.995
    assert np.median(np.abs(ours - theirs)) <= 0.01 * np.median(theirs)
    # ...and the label boxes reprojected to UTM and burnt on the tile grid: the same pixels.
    utm_mask = rasterize(labels.to_crs(grid.crs).geometry, out_shape=tile.shape, transform=tile.transform)
    overlap = np.logical_and(utm_mask, warped_mask).sum() / np.logical_or(utm_mask, warped_mask).sum()
    assert overlap > 0.8, f"labels and imagery disagree after reprojection (IoU {overlap:.2f})"
    assert utm_mask.sum() > 0
