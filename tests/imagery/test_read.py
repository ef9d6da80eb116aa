"""Reading tiles: exact windows on aligned grids, warping otherwise, and honest validity masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.coords import BoundingBox

from fieldtruth.imagery.errors import ImageryReadError
from fieldtruth.imagery.grid import TileBlock, TileGrid
from fieldtruth.imagery.read import read_block, read_chip
from fieldtruth.imagery.target import grid_for_scene
from fieldtruth.ingest.scene import open_scene
from fieldtruth.tests.data.rasters import scene_folder, truncated_copy


def test_aligned_tile_reads_exactly_the_window_and_masks_outside(tmp_path: Path) -> None:
    scene = open_scene(scene_folder(tmp_path / "s", size=200))
    grid = grid_for_scene(scene, tile_size=128, halo=16)
    tile = grid.tile(0, 1)
    chip = read_chip(scene, tile)
    assert chip.data.shape == (4, 128 + 32, 72 + 32)  # edge tile: core 72 px wide
    with rasterio.open(tmp_path / "s" / "B03.tif") as band:
        expected = band.read(1)[0 : 128 + 16, 128 - 16 : 200].astype(np.float32)
    np.testing.assert_array_equal(chip.data[1, 16:, : 200 - 112], expected)
    assert not chip.valid[:16].any(), "rows above the scene must be invalid"
    assert not chip.valid[:, 200 - 112 :].any(), "columns right of the scene must be invalid"
    assert chip.valid[16:, : 200 - 112].all()


def test_nodata_pixels_are_invalid_not_zero_ground(tmp_path: Path) -> None:
    folder = scene_folder(tmp_path / "s", size=64, nodata=0)
    with rasterio.open(folder / "B02.tif", "r+") as band:
        data = band.read(1)
        data[10:20, 10:20] = 0
        band.write(data, 1)
    scene = open_scene(folder)
    chip = read_chip(scene, grid_for_scene(scene, tile_size=64, halo=0).tile(0, 0))
    assert not chip.valid[10:20, 10:20].any()
    assert chip.valid.sum() == 64 * 64 - 100


def test_reprojected_read_matches_rasterio_reproject(tmp_path: Path) -> None:
    folder = scene_folder(tmp_path / "s", size=128, crs="EPSG:3857", origin=(9_680_000.0, 3_000_000.0))
    scene = open_scene(folder)
    grid = grid_for_scene(scene, resolution=10.0, tile_size=64, halo=0)
    assert grid.crs.to_epsg() == 32645
    tile = grid.tile(1, 1)
    chip = read_chip(scene, tile, ("red",))
    from rasterio.warp import Resampling, reproject

    with rasterio.open(folder / "B04.tif") as src:
        expected = np.zeros(tile.shape, dtype=np.float32)
        reproject(rasterio.band(src, 1), expected, dst_transform=tile.transform, dst_crs=grid.crs,
                  resampling=Resampling.bilinear)
    inner = chip.valid.copy()
    inner[[0, -1], :] = inner[:, [0, -1]] = False
    assert inner.sum() > 0.8 * inner.size
    np.testing.assert_allclose(chip.data[0][inner], expected[inner], rtol=0.02)


def test_truncated_file_fails_with_its_name(tmp_path: Path) -> None:
    folder = scene_folder(tmp_path / "s", size=256)
    scene = open_scene(folder)
    truncated_copy(folder / "B04.tif", tmp_path / "cut.tif", keep_fraction=0.3)
    (folder / "B04.tif").write_bytes((tmp_path / "cut.tif").read_bytes())
    grid = TileGrid(BoundingBox(*scene.bounds), scene.crs, 10.0, 128, 0)
    with pytest.raises(ImageryReadError, match="B04.tif"):
        for tile in grid:
            read_chip(scene, tile)


def test_sentinel2_scl_masks_clouds_and_the_mosaic_fills_them_from_the_next_scene(tmp_path: Path) -> None:
    from fieldtruth.imagery.read import read_mosaic
    from fieldtruth.tests.data.rasters import write_band

    cloudy = scene_folder(tmp_path / "cloudy", size=64, seed=1)
    classes = np.full((64, 64), 4)  # vegetation
    classes[:20, :20] = 9  # high-probability cloud
    classes[40:, 40:] = 3  # cloud shadow
    write_band(cloudy / "SCL.tif", classes)
    clear = scene_folder(tmp_path / "clear", size=64, seed=2)
    first, second = open_scene(cloudy), open_scene(clear)
    assert "scl" in first.bands and first.band_names == ("blue", "green", "red", "nir")
    tile = grid_for_scene(first, tile_size=64, halo=0).tile(0, 0)
    chip = read_chip(first, tile)
    assert chip.data.shape[0] == 4, "the cloud mask is not an image band"
    assert not chip.valid[:20, :20].any() and not chip.valid[40:, 40:].any()
    assert chip.valid.sum() == 64 * 64 - 400 - 576
    mosaic = read_mosaic([first, second], tile)
    assert mosaic.valid.all()
    with rasterio.open(clear / "B02.tif") as band:
        np.testing.assert_array_equal(mosaic.data[0, :20, :20], band.read(1)[:20, :20].astype(np.float32))
    with rasterio.open(cloudy / "B02.tif") as band:
        np.testing.assert_array_equal(
            mosaic.data[0, 30:35, 30:35], band.read(1)[30:35, 30:35].astype(np.float32)
        )


@pytest.mark.parametrize("crs", ["EPSG:32645", "EPSG:3857"])
def test_a_block_reads_each_tile_as_it_would_be_read_alone_or_in_any_part_of_its_block(
    tmp_path: Path, crs: str
) -> None:
    origin = (9_680_000.0, 3_000_000.0) if crs == "EPSG:3857" else (300_000.0, 3_000_000.0)
    scene = open_scene(scene_folder(tmp_path / "s", size=300, crs=crs, origin=origin))
    grid = grid_for_scene(
        scene, resolution=10.0, tile_size=96, halo=12
    )  # 4 x 4 tiles, the last ones cut short
    for block in grid.blocks(2):
        chips = read_block([scene], block)
        assert [c.tile_id for c in chips] == [t.id for t in block.tiles]
        for tile, chip in zip(block.tiles, chips, strict=True):
            assert chip.transform == tile.transform and chip.data.shape[1:] == tile.shape
            assert chip.data.flags.c_contiguous
            alone = read_chip(scene, tile)
            if crs == "EPSG:32645":  # on the grid: window reads, exact whatever the window
                np.testing.assert_array_equal(chip.data, alone.data)
                np.testing.assert_array_equal(chip.valid, alone.valid)
            else:  # warped: GDAL's approximate transform depends on the window, so only close alone ...
                both = chip.valid & alone.valid
                np.testing.assert_allclose(chip.data[:, both], alone.data[:, both], rtol=0.02)
        # ... but exactly the same in any part of its block (as a resumed scan reads it)
        last = TileBlock(block.window, block.tiles[-1:])
        np.testing.assert_array_equal(read_block([scene], last)[0].data, chips[-1].data)


def test_an_overview_takes_every_nth_pixel_and_masks_clouds_and_nodata(tmp_path: Path) -> None:
    from fieldtruth.imagery.read import read_overview
    from fieldtruth.tests.data.rasters import write_band

    folder = scene_folder(tmp_path / "s", size=300, seed=4, nodata=0)
    classes = np.full((300, 300), 4)
    classes[:30, :30] = 9  # cloud
    write_band(folder / "SCL.tif", classes)
    with rasterio.open(folder / "B08.tif") as src:
        nir, profile = src.read(1), src.profile
    nir[-30:, :] = 0  # nodata
    with rasterio.open(folder / "B08.tif", "w", **profile) as dst:
        dst.write(nir, 1)
    data, valid = read_overview(open_scene(folder), ("blue", "nir"), max_side=100)
    assert data.shape == (2, 100, 100) and valid.shape == (100, 100)
    with rasterio.open(folder / "B02.tif") as src:
        np.testing.assert_array_equal(
            data[0], src.read(1)[1::3, 1::3].astype(np.float32)
        )  # each 3 x 3 cell's centre
    assert not valid[:10, :10].any() and not valid[-10:, :].any()
    assert valid[10:-10, 10:].all()
    whole, _ = read_overview(open_scene(folder), ("blue",), max_side=300)
    assert whole.shape == (1, 300, 300)


def test_a_scenes_band_offsets_are_added_to_its_valid_pixels_as_read(tmp_path: Path) -> None:
    import dataclasses

    scene = open_scene(scene_folder(tmp_path / "s", size=64, seed=1))
    tile = grid_for_scene(scene, tile_size=64, halo=8).tile(0, 0)
    plain = read_chip(scene, tile, ("red", "nir"))
    shifted = read_chip(dataclasses.replace(scene, band_offsets={"nir": -250.5}), tile, ("red", "nir"))
    np.testing.assert_array_equal(shifted.valid, plain.valid)
    assert not plain.valid.all()  # the halo reaches outside the scene
    np.testing.assert_array_equal(shifted.data[0], plain.data[0])
    np.testing.assert_allclose(shifted.data[1][plain.valid], plain.data[1][plain.valid] - 250.5)
    assert (shifted.data[1][~plain.valid] == 0).all()


@pytest.mark.parametrize(
    ("dtype", "nodata"), [("uint16", 0.0), ("float32", float("nan")), ("float32", -9999.0)])
def test_a_warped_reads_validity_is_gdals_nodata_mask(tmp_path: Path, dtype: str, nodata: float) -> None:
    """The mask of a warped band with a nodata value is taken from its pixels, not warped a second time:
    it must be GDAL's own mask (``read_masks``) of the same warp, holes and the scene's edge included."""
    from rasterio.crs import CRS
    from rasterio.enums import Resampling
    from rasterio.transform import from_origin
    from rasterio.vrt import WarpedVRT

    from fieldtruth.imagery.read import _read_source

    rng = np.random.default_rng(5)
    data = rng.uniform(1, 3000, (96, 96)).astype(dtype)
    data[30:50, 20:45] = nodata  # a hole of nodata inside the scene
    path = tmp_path / "B04.tif"
    profile = {"driver": "GTiff", "dtype": dtype, "count": 1, "width": 96, "height": 96, "crs": "EPSG:3857",
               "transform": from_origin(9_680_000.0, 3_000_000.0, 10.0, 10.0), "nodata": nodata}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    scene = open_scene(path.parent)
    grid = grid_for_scene(scene, resolution=9.0, tile_size=48, halo=6)
    mixed = 0
    for tile in grid:
        dest = np.zeros(tile.shape, dtype=np.float32)
        valid = _read_source(str(path), 1, tile, nodata, dest)
        with rasterio.open(path) as src, WarpedVRT(
            src, crs=CRS.from_user_input(tile.crs), transform=tile.transform, width=tile.shape[1],
            height=tile.shape[0], resampling=Resampling.bilinear, src_nodata=nodata, nodata=nodata,
        ) as vrt:
            expected = vrt.read_masks(1) > 0
        assert np.array_equal(valid, expected), tile.id
        mixed += 0 < expected.sum() < expected.size
    assert mixed >= 2  # tiles with both data and nodata: the hole, the scene's edge
