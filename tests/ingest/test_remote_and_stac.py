"""Remote COGs over loopback HTTP with range requests, STAC items and catalogues, and href policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from fieldtruth.imagery.read import read_chip, read_mosaic
from fieldtruth.imagery.target import grid_for_scene, grid_for_scenes
from fieldtruth.ingest.errors import RasterRefusedError
from fieldtruth.ingest.remote import check_href
from fieldtruth.ingest.sources import open_imagery
from fieldtruth.ingest.stac import StacError, scene_from_item
from fieldtruth.tests.data.rangeserver import serve
from fieldtruth.tests.data.rasters import scene_folder
from fieldtruth.tests.data.stac import item_for_folder, static_catalog


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    return scene_folder(tmp_path / "scene", size=256, seed=3)


def _local_chip(folder: Path):
    scene = open_imagery(folder)[0]
    tile = grid_for_scene(scene, tile_size=128, halo=8).tile(1, 0)
    return tile, read_chip(scene, tile)


# "flaky" drops connections: GDAL waits between its retries
@pytest.mark.parametrize("mode", ["normal", pytest.param("flaky", marks=pytest.mark.slow), "redirect"])
def test_tile_read_over_http_matches_local_read(folder: Path, mode: str) -> None:
    tile, expected = _local_chip(folder)
    with serve(folder, mode=mode) as (base, log):
        prefix = f"{base}/r" if mode == "redirect" else base
        item = item_for_folder(folder, "remote-scene", href_base=prefix)
        scene = scene_from_item(item, allow_hosts=["127.0.0.1"])
        chip = read_chip(scene, tile)
    np.testing.assert_array_equal(chip.data, expected.data)
    np.testing.assert_array_equal(chip.valid, expected.valid)
    assert log.range_requests > 0, "reads must use HTTP range requests"
    if mode == "flaky":
        assert log.dropped > 0
    whole = sum(p.stat().st_size for p in folder.glob("*.tif"))
    fetched_files = {path for path, _ in log.requests}
    assert len(fetched_files) >= 4 and whole > 0


def test_static_catalogue_is_searched_and_read_end_to_end(tmp_path: Path) -> None:
    east = scene_folder(tmp_path / "stac" / "east", size=128, seed=1, origin=(501_280.0, 2_800_000.0))
    west = scene_folder(tmp_path / "stac" / "west", size=128, seed=2)
    catalog = static_catalog(tmp_path / "stac", {"west": west, "east": east})
    scenes = open_imagery(catalog)
    assert sorted(s.id for s in scenes) == ["east", "west"]
    assert all(s.band_names == ("blue", "green", "red", "nir") for s in scenes)
    grid = grid_for_scenes(scenes, tile_size=64, halo=0)
    assert grid.shape == (2, 4)
    chip = read_mosaic(scenes, grid.tile(0, 3), ("nir",))
    with rasterio.open(east / "B08.tif") as band:
        np.testing.assert_array_equal(chip.data[0], band.read(1)[0:64, 64:128].astype(np.float32))
    assert chip.valid.all()


def test_item_with_band_keys_but_no_eo_extension_maps_common_names(folder: Path) -> None:
    item = item_for_folder(folder, "plain", use_common_names=False)
    assert scene_from_item(item, allow_dirs=[folder]).band_names == ("blue", "green", "red", "nir")


def test_item_missing_a_band_names_the_band(folder: Path) -> None:
    item = item_for_folder(folder, "three-bands")
    del item.assets["B08"]
    with pytest.raises(StacError, match="'nir'"):
        scene_from_item(item)


@pytest.mark.parametrize(
    "href",
    [
        "file:///etc/passwd",
        "http://example.org/a.tif",
        "https://127.0.0.1/a.tif",
        "https://localhost/a.tif",
        "https://169.254.169.254/latest/meta-data",
        "https://10.1.2.3/a.tif",
        "https://[::1]/a.tif",
        "ftp://example.org/a.tif",
    ],
)
def test_unsafe_hrefs_are_refused_before_gdal_sees_them(href: str) -> None:
    with pytest.raises(RasterRefusedError):
        check_href(href)


def test_an_explicitly_allowed_host_is_read(folder: Path) -> None:
    assert check_href("http://127.0.0.1:8000/a.tif", allow_hosts=["127.0.0.1"]).startswith("http://127.0.0.1")


def test_stac_item_pointing_at_loopback_is_refused_without_permission(folder: Path) -> None:
    item = item_for_folder(folder, "sneaky", href_base="http://127.0.0.1:9")
    with pytest.raises(RasterRefusedError, match="127.0.0.1"):
        scene_from_item(item)


def test_stac_api_search_filters_by_cloud_and_reads_end_to_end(tmp_path: Path) -> None:
    from fieldtruth.tests.data.stacapi import stac_api

    clear = scene_folder(tmp_path / "files" / "clear", size=128, seed=4)
    cloudy = scene_folder(tmp_path / "files" / "cloudy", size=128, seed=5)
    with serve(tmp_path / "files") as (files, _):
        items = [item_for_folder(clear, "clear", cloud=3.0, href_base=f"{files}/clear"),
                 item_for_folder(cloudy, "cloudy", cloud=80.0, href_base=f"{files}/cloudy")]
        for item in items:
            item.collection_id = "synthetic-l2a"
        with stac_api(items) as url:
            everything = open_imagery(url, collection="synthetic-l2a", datetime="2024-01-01/2024-03-31",
                                      allow_hosts=["127.0.0.1"])
            few_clouds = open_imagery(url, collection="synthetic-l2a", datetime="2024-01-01/2024-03-31",
                                      max_cloud=20, allow_hosts=["127.0.0.1"])
            with pytest.raises(StacError, match="found no"):
                open_imagery(url, collection="other", allow_hosts=["127.0.0.1"])
            scene = few_clouds[0]
            chip = read_chip(scene, grid_for_scene(scene, tile_size=128, halo=0).tile(0, 0))
    assert [s.id for s in everything] == ["clear", "cloudy"], "least cloudy first"
    assert [s.id for s in few_clouds] == ["clear"]
    with rasterio.open(clear / "B02.tif") as band:
        np.testing.assert_array_equal(chip.data[0], band.read(1).astype(np.float32))


def test_stac_api_on_loopback_is_refused_without_permission() -> None:
    with pytest.raises(RasterRefusedError, match="127.0.0.1"):
        open_imagery("https://127.0.0.1:9/", collection="x")


def test_a_remote_scenes_water_offsets_equal_the_local_ones(folder: Path) -> None:
    from fieldtruth.detectors.sceneoffset import WATER_OFFSET, water_offsets

    bands = ("blue", "green", "red", "nir")
    local = water_offsets(open_imagery(folder)[0], bands, WATER_OFFSET)
    with serve(folder, mode="flaky") as (base, log):
        scene = scene_from_item(item_for_folder(folder, "remote-scene", href_base=base),
                                allow_hosts=["127.0.0.1"])
        remote = water_offsets(scene, bands, WATER_OFFSET)
    assert remote == local and set(local) == set(bands)
    assert log.range_requests > 0 and log.dropped > 0
