"""Pixels that are not numbers are not imagery: NaN, infinities and absurd values are invalid pixels,
counted as not covered, and never reach a detector (which sees 0 there, never NaN)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import rasterio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldtruth.imagery import handles
from fieldtruth.imagery.read import read_chip, read_mosaic, read_overview
from fieldtruth.imagery.target import grid_for_scene
from fieldtruth.imagery.validity import PLAUSIBLE_MAX, blank_invalid, plausible
from fieldtruth.ingest.scene import open_scene
from fieldtruth.tests.data.hostile import invalid_pixels_copy
from fieldtruth.tests.data.rasters import UTM_45N, scene_folder, write_band

BLOCK = (slice(10, 30), slice(20, 50))  # 20 x 30 px


@pytest.fixture(autouse=True)
def no_kept_handles() -> None:
    handles.close_all()
    yield
    handles.close_all()


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scene_folder(tmp_path_factory.mktemp("clean") / "s", size=64, seed=2)


def _whole(folder: Path, **kwargs):
    scene = open_scene(folder, hash_files=False)
    tile = grid_for_scene(scene, tile_size=64, halo=0, **kwargs).tile(0, 0)
    return scene, tile, read_chip(scene, tile)


@pytest.mark.parametrize("what", ["nan_block", "inf_block"])
def test_a_block_of_non_numbers_is_invalid_and_the_rest_is_read(clean: Path, tmp_path: Path,
                                                                 what: str) -> None:
    _, _, expected = _whole(clean)
    _, _, chip = _whole(invalid_pixels_copy(clean, tmp_path / what, **{what: BLOCK}))
    assert np.isfinite(chip.data).all(), "masking never produces NaN"
    assert not chip.valid[BLOCK].any() and (chip.data[:, BLOCK[0], BLOCK[1]] == 0).all()
    outside = np.ones_like(chip.valid)
    outside[BLOCK] = False
    assert chip.valid[outside].all()
    np.testing.assert_array_equal(chip.data[:, outside], expected.data[:, outside])
    assert chip.valid_fraction == pytest.approx(1 - 20 * 30 / 64**2)


@pytest.mark.parametrize("value", [1e38, -1e38, 3.4e38, PLAUSIBLE_MAX * 1.01])
def test_a_band_of_absurd_values_makes_the_tile_not_covered(clean: Path, tmp_path: Path,
                                                            value: float) -> None:
    folder = invalid_pixels_copy(clean, tmp_path / "huge", huge_band="B08")
    with rasterio.open(folder / "B08.tif", "r+") as band:
        band.write(np.full((64, 64), value, dtype=np.float32), 1)
    _, _, chip = _whole(folder)
    assert not chip.valid.any() and (chip.data == 0).all()


def test_a_nan_nodata_value_marks_nan_pixels_invalid(clean: Path, tmp_path: Path) -> None:
    folder = invalid_pixels_copy(clean, tmp_path / "nodata", nan_block=BLOCK, nodata=float("nan"))
    scene, tile, chip = _whole(folder)
    assert np.isnan(scene.nodata)
    assert not chip.valid[BLOCK].any() and chip.valid.sum() == 64 * 64 - 20 * 30
    assert np.isfinite(chip.data).all()
    data, valid = read_overview(scene, ("blue", "nir"))
    assert not valid[BLOCK].any() and valid.sum() == 64 * 64 - 20 * 30


def test_a_warped_read_spreading_nan_never_returns_it(clean: Path, tmp_path: Path) -> None:
    folder = invalid_pixels_copy(clean, tmp_path / "nan", nan_block=BLOCK)
    scene = open_scene(folder, hash_files=False)
    tile = grid_for_scene(scene, tile_size=48, halo=4, resolution=7.0).tile(0, 0)  # not aligned: warped
    chip = read_chip(scene, tile)
    assert np.isfinite(chip.data).all()
    assert 0 < chip.valid.mean() < 1


def test_band_offsets_on_invalid_pixels_never_make_nan(clean: Path, tmp_path: Path) -> None:
    folder = invalid_pixels_copy(clean, tmp_path / "nan", nan_block=BLOCK)
    scene = dataclasses.replace(open_scene(folder, hash_files=False), band_offsets={"nir": -250.0})
    chip = read_chip(scene, grid_for_scene(scene, tile_size=64, halo=0).tile(0, 0))
    assert np.isfinite(chip.data).all() and (chip.data[:, ~chip.valid] == 0).all()


def test_a_mosaic_fills_the_invalid_block_from_the_next_scene(clean: Path, tmp_path: Path) -> None:
    broken = open_scene(invalid_pixels_copy(clean, tmp_path / "nan", nan_block=BLOCK), hash_files=False)
    whole = open_scene(clean, hash_files=False)
    tile = grid_for_scene(whole, tile_size=64, halo=0).tile(0, 0)
    chip = read_mosaic([broken, whole], tile)
    assert chip.valid.all()
    np.testing.assert_array_equal(chip.data, read_chip(whole, tile).data)


def test_an_overview_counts_absurd_values_as_invalid(clean: Path, tmp_path: Path) -> None:
    scene = open_scene(invalid_pixels_copy(clean, tmp_path / "huge", huge_band="B03", inf_block=BLOCK),
                       hash_files=False)
    _, valid = read_overview(scene, ("blue", "nir"))
    assert valid.sum() == 64 * 64 - 20 * 30  # the inf block; green (1e38) is not asked for
    _, valid = read_overview(scene, ("green",))
    assert not valid.any()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), min_size=8, max_size=8))
def test_whatever_a_pixel_holds_the_chip_is_finite_and_valid_means_plausible(tmp_path_factory,
                                                                            values) -> None:
    folder = tmp_path_factory.mktemp("any")
    pixels = np.array(values, dtype=np.float32).reshape(2, 4)
    for name in ("B02", "B03", "B04", "B08"):
        profile = {"driver": "GTiff", "dtype": "float32", "count": 1, "width": 4, "height": 2, "crs": UTM_45N,
                   "transform": rasterio.transform.from_origin(500_000, 2_800_000, 10, 10)}
        with rasterio.open(folder / f"{name}.tif", "w", **profile) as dst:
            dst.write(pixels, 1)
    scene = open_scene(folder, hash_files=False)
    chip = read_chip(scene, grid_for_scene(scene, tile_size=4, halo=0).tile(0, 0))
    assert np.isfinite(chip.data).all()
    assert (np.abs(chip.data[:, chip.valid]) <= PLAUSIBLE_MAX).all()
    sane = np.abs(np.nan_to_num(pixels, nan=np.inf)) <= PLAUSIBLE_MAX
    assert np.array_equal(chip.valid, sane & (pixels != 0))


def test_plausible_and_blank_invalid_on_arrays() -> None:
    data = np.array([[[1.0, np.nan, np.inf, -1e6, 5.0]], [[2.0, 2.0, 2.0, 2.0, 7.0]]], dtype=np.float32)
    valid = plausible(data, nodata=5.0)
    assert valid.tolist() == [[True, False, False, False, False]]
    blank_invalid(data, valid)
    assert np.isfinite(data).all() and data[:, 0, 1:].sum() == 0


def test_an_integer_scene_with_zeros_keeps_its_old_rules(tmp_path: Path) -> None:
    folder = scene_folder(tmp_path / "s", size=64, seed=1, nodata=0)
    write_band(folder / "B02.tif", np.zeros((64, 64)), nodata=0)
    _, _, chip = _whole(folder)
    assert not chip.valid.any()
