"""Kept-open raster handles: reused, reopened when a file changes, bounded, lent to one thread at a time,
and read by several threads at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from fieldtruth.imagery import handles
from fieldtruth.imagery.read import read_chip
from fieldtruth.imagery.target import grid_for_scene
from fieldtruth.ingest.errors import InputNotFoundError
from fieldtruth.ingest.scene import open_scene
from fieldtruth.tests.data.rasters import scene_folder, write_band


@pytest.fixture(autouse=True)
def no_kept_handles() -> None:
    handles.close_all()
    yield
    handles.close_all()


def test_a_file_is_opened_once_and_reads_the_same(tmp_path: Path) -> None:
    scene = open_scene(scene_folder(tmp_path / "s", size=300), hash_files=False)
    tiles = list(grid_for_scene(scene, tile_size=128, halo=16))
    first = [read_chip(scene, t) for t in tiles]
    assert handles.open_count() == 4  # one per band file, kept across all the tiles
    again = [read_chip(scene, t) for t in tiles]
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.data, b.data) and np.array_equal(a.valid, b.valid)


def test_a_file_rewritten_in_place_is_reopened(tmp_path: Path) -> None:
    folder = scene_folder(tmp_path / "s", size=128)
    scene = open_scene(folder, hash_files=False)
    tile = next(iter(grid_for_scene(scene, tile_size=128, halo=0)))
    before = read_chip(scene, tile, ("red",)).data
    write_band(folder / "B04.tif", np.full((128, 128), 4321, dtype=np.uint16))
    after = read_chip(scene, tile, ("red",)).data
    assert not np.array_equal(before, after) and np.all(after == 4321)


def test_the_number_of_open_files_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handles, "MAX_OPEN", 2)
    folder = scene_folder(tmp_path / "s", size=64)
    kept = []
    for name in ("B02.tif", "B03.tif", "B04.tif"):
        with handles.shared_raster(str(folder / name)) as dataset:
            kept.append(dataset)
    assert handles.open_count() == 2
    assert kept[0].closed and not kept[1].closed and not kept[2].closed


def test_a_missing_file_is_named_and_not_kept(tmp_path: Path) -> None:
    with (
        pytest.raises(InputNotFoundError, match="nothere.tif"),
        handles.shared_raster(str(tmp_path / "nothere.tif")),
    ):
        pass
    assert handles.open_count() == 0


def test_threads_reading_at_once_get_what_one_thread_gets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handles, "MAX_OPEN", 3)  # fewer than the bands: handles are evicted while in use
    scene = open_scene(scene_folder(tmp_path / "s", size=400, seed=3), hash_files=False)
    tiles = list(grid_for_scene(scene, tile_size=64, halo=8))
    expected = [read_chip(scene, t).data for t in tiles]
    with ThreadPoolExecutor(max_workers=6) as pool:
        got = list(pool.map(lambda t: read_chip(scene, t).data, tiles * 3))
    for i, data in enumerate(got):
        assert np.array_equal(data, expected[i % len(tiles)])


def test_threads_read_one_file_at_the_same_time_each_with_its_own_handle(tmp_path: Path) -> None:
    band = str(scene_folder(tmp_path / "s", size=64) / "B02.tif")
    inside = threading.Barrier(3, timeout=10)  # broken if a thread waits for another to finish reading

    def read_while_the_others_read() -> tuple[int, int]:
        with handles.shared_raster(band) as dataset:
            inside.wait()
            pixels = dataset.read(1)
            inside.wait()
            return id(dataset), int(pixels.sum())

    with ThreadPoolExecutor(max_workers=3) as pool:
        got = list(pool.map(lambda _: read_while_the_others_read(), range(3)))
    assert len({handle for handle, _ in got}) == 3 and len({total for _, total in got}) == 1
    assert handles.open_count() == 3  # all kept for the next reads
    with handles.shared_raster(band) as dataset:  # a kept handle is lent again, none opened
        assert id(dataset) in {handle for handle, _ in got}
    assert handles.open_count() == 3


def test_handles_lent_when_all_are_closed_are_closed_when_returned(tmp_path: Path) -> None:
    band = str(scene_folder(tmp_path / "s", size=64) / "B02.tif")
    with handles.shared_raster(band) as dataset:
        handles.close_all()
        assert not dataset.closed and dataset.read(1).shape == (64, 64)  # the reader is not cut off
    assert dataset.closed and handles.open_count() == 0
