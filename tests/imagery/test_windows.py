"""Windows of a scene: bounded pieces of its own grid, written back as scene folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from fieldtruth.imagery.errors import GridError
from fieldtruth.imagery.read import read_chip
from fieldtruth.imagery.synthetic import generate_scene
from fieldtruth.imagery.windows import MAX_WINDOW_PX, scene_windows, write_window
from fieldtruth.ingest.scene import open_scene


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - a Scene
    return open_scene(generate_scene(tmp_path_factory.mktemp("win") / "s", seed=2, size=400).path)


def test_windows_tile_the_scene_on_its_own_pixels(scene) -> None:  # noqa: ANN001
    windows = list(scene_windows(scene, 256))
    assert [w.shape for w in windows] == [(256, 256), (256, 144), (144, 256), (144, 144)]
    assert windows[0].core.left == scene.bounds.left and windows[0].core.top == scene.bounds.top
    # a 300 px grid leaves edge pieces of 100 px, under the 128 px least side: they are left out
    assert [w.shape for w in scene_windows(scene, 300)] == [(300, 300)]


@pytest.mark.parametrize("size", [0, MAX_WINDOW_PX + 1])
def test_a_window_size_out_of_bounds_is_refused(scene, size: int) -> None:  # noqa: ANN001
    with pytest.raises(GridError, match=f"got {size}"):
        next(scene_windows(scene, size))


def test_a_written_window_reads_back_as_the_same_pixels(scene, tmp_path: Path) -> None:  # noqa: ANN001
    window = list(scene_windows(scene, 256))[3]
    chip = read_chip(scene, window)
    write_window(chip, tmp_path / "w")
    again = open_scene(tmp_path / "w")
    assert again.crs == scene.crs and again.transform == chip.transform
    np.testing.assert_array_equal(again.read(), chip.data)
    with rasterio.open(tmp_path / "w" / "B08.tif") as dataset:
        assert dataset.dtypes[0] == "uint16" and dataset.nodata is None
