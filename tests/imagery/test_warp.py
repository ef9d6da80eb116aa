"""Bands warped together: the pixels and validity of band-by-band warps; stacked only where it is safe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from fieldtruth.imagery import read as read_module
from fieldtruth.imagery.errors import ImageryReadError
from fieldtruth.imagery.read import read_chip
from fieldtruth.imagery.target import grid_for_scene
from fieldtruth.imagery.warp import read_stacked
from fieldtruth.ingest.scene import open_scene
from fieldtruth.tests.data.rasters import BAND_FILES, scene_folder, truncated_copy

MERCATOR_ORIGIN = (9_680_000.0, 3_000_000.0)


def _float_scene(folder: Path, size: int = 96) -> Path:
    """Four float32 bands in Web Mercator without a nodata value, each with its own patch of NaN."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    for i, name in enumerate(BAND_FILES):
        data = rng.uniform(1, 3000, (size, size)).astype("float32")
        data[10 + 5 * i : 30 + 5 * i, 40:60] = np.nan
        profile = {"driver": "GTiff", "dtype": "float32", "count": 1, "width": size, "height": size,
                   "crs": "EPSG:3857", "transform": from_origin(*MERCATOR_ORIGIN, 10.0, 10.0)}
        with rasterio.open(folder / f"{name}.tif", "w", **profile) as dst:
            dst.write(data, 1)
    return folder


def _band_by_band(monkeypatch: pytest.MonkeyPatch, scene, tile):  # noqa: ANN001, ANN202
    with monkeypatch.context() as patch:
        patch.setattr(read_module, "read_stacked", lambda *args: None)
        return read_chip(scene, tile)


@pytest.mark.parametrize("kind", ["uint16", "float32 with NaN"])
def test_bands_warped_together_are_the_bands_warped_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str,
) -> None:
    if kind == "uint16":
        folder = scene_folder(tmp_path / "s", size=96, crs="EPSG:3857", origin=MERCATOR_ORIGIN)
        with rasterio.open(folder / "B03.tif", "r+") as band:  # zeros in one band: valid there
            pixels = band.read(1)
            pixels[20:40, 30:50] = 0
            band.write(pixels, 1)
    else:
        folder = _float_scene(tmp_path / "s")
    scene = open_scene(folder, hash_files=False)
    grid = grid_for_scene(scene, resolution=9.0, tile_size=48, halo=6)
    mixed = 0
    for tile in grid:
        dest = np.zeros((4, *tile.shape), dtype=np.float32)
        assert read_stacked(scene, scene.band_names, tile, dest) is not None  # warped together here
        together, alone = read_chip(scene, tile), _band_by_band(monkeypatch, scene, tile)
        assert np.array_equal(together.valid, alone.valid), tile.id
        assert np.array_equal(together.data, alone.data), tile.id
        mixed += 0 < together.valid.sum() < together.valid.size
    assert mixed >= 2  # tiles with data and without: the NaN, the scene's edge


@pytest.mark.parametrize("nodata", [0.0, 65535.0])
def test_bands_with_a_nodata_value_are_warped_one_by_one(tmp_path: Path, nodata: float) -> None:
    folder = scene_folder(tmp_path / "s", size=96, crs="EPSG:3857", origin=MERCATOR_ORIGIN, nodata=nodata)
    scene = open_scene(folder, hash_files=False)
    tile = next(iter(grid_for_scene(scene, resolution=9.0, tile_size=48, halo=6)))
    assert read_stacked(scene, scene.band_names, tile, np.zeros((4, *tile.shape), np.float32)) is None


def test_bands_are_not_stacked_on_their_own_grid_on_two_grids_or_alone(tmp_path: Path) -> None:
    folder = scene_folder(tmp_path / "s", size=96, crs="EPSG:3857", origin=MERCATOR_ORIGIN)
    scene = open_scene(folder, hash_files=False)
    warped = next(iter(grid_for_scene(scene, resolution=9.0, tile_size=48, halo=6)))
    dest = np.zeros((4, *warped.shape), dtype=np.float32)
    assert read_stacked(scene, scene.band_names[:1], warped, dest[:1]) is None  # one band: nothing to share
    on_grid = next(iter(grid_for_scene(scene, resolution=10.0, tile_size=48, halo=6)))
    if on_grid.crs == scene.crs.to_string():
        assert read_stacked(scene, scene.band_names, on_grid, dest) is None
    shifted = scene_folder(tmp_path / "other", size=96, crs="EPSG:3857",
                           origin=(MERCATOR_ORIGIN[0] + 5.0, MERCATOR_ORIGIN[1]))
    (folder / "B08.tif").write_bytes((shifted / "B08.tif").read_bytes())  # nir half a pixel off
    moved = open_scene(folder, hash_files=False)
    assert read_stacked(moved, moved.band_names, warped, dest) is None
    other_type = scene_folder(tmp_path / "typed", size=96, crs="EPSG:3857", origin=MERCATOR_ORIGIN)
    with rasterio.open(other_type / "B02.tif") as src:
        profile, pixels = {**src.profile, "dtype": "float32"}, src.read(1).astype("float32")
    with rasterio.open(other_type / "B02.tif", "w", **profile) as dst:  # blue in float32, the others uint16
        dst.write(pixels, 1)
    typed = open_scene(other_type, hash_files=False)
    assert read_stacked(typed, typed.band_names, warped, dest) is None
    assert not dest.any()  # nothing read


def test_a_truncated_band_warped_with_others_fails_naming_it(tmp_path: Path) -> None:
    folder = scene_folder(tmp_path / "s", size=256, crs="EPSG:3857", origin=MERCATOR_ORIGIN)
    truncated_copy(folder / "B04.tif", tmp_path / "cut.tif", keep_fraction=0.3)
    (folder / "B04.tif").write_bytes((tmp_path / "cut.tif").read_bytes())
    scene = open_scene(folder, hash_files=False)
    with pytest.raises(ImageryReadError, match=r"band 'red' .*B04.tif"):
        for tile in grid_for_scene(scene, resolution=9.0, tile_size=128, halo=8):
            read_chip(scene, tile)
