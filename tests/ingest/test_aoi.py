"""AOIs: vector files in any CRS and bboxes become one EPSG:4326 geometry, or a clear error."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from fieldtruth.imagery.target import grid_for_scenes
from fieldtruth.ingest.aoi import AoiError, parse_bbox, read_aoi
from fieldtruth.ingest.errors import InputNotFoundError
from fieldtruth.ingest.scene import open_scene
from fieldtruth.tests.data.rasters import scene_folder


def test_geopackage_in_utm_is_read_in_degrees(tmp_path: Path) -> None:
    box = shapely.box(500_000, 2_797_440, 501_280, 2_800_000)
    gpd.GeoDataFrame(geometry=[box], crs="EPSG:32645").to_file(tmp_path / "aoi.gpkg")
    aoi = read_aoi(tmp_path / "aoi.gpkg")
    expected = gpd.GeoSeries([box], crs="EPSG:32645").to_crs(4326).iloc[0]
    assert aoi.symmetric_difference(expected).area < 1e-9


def test_aoi_limits_the_tile_grid(tmp_path: Path) -> None:
    scene = open_scene(scene_folder(tmp_path / "s", size=256))
    half = gpd.GeoSeries([shapely.box(500_000, 2_797_440, 501_280, 2_800_000)], crs="EPSG:32645").to_crs(4326)
    full = grid_for_scenes([scene], tile_size=64, halo=0)
    limited = grid_for_scenes([scene], tile_size=64, halo=0, aoi_bounds=tuple(half.total_bounds))
    assert len(full) == 16 and len(limited) < len(full)
    assert limited.crs == scene.crs


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "10,0,5,1", "0,-95,1,0"])
def test_bad_bbox_says_what_is_expected(text: str) -> None:
    with pytest.raises(AoiError, match="west"):
        parse_bbox(text)


def test_missing_aoi_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="nowhere.geojson"):
        read_aoi(tmp_path / "nowhere.geojson")


def test_aoi_of_points_has_no_area(tmp_path: Path) -> None:
    gpd.GeoDataFrame(geometry=[shapely.Point(87, 25)], crs="EPSG:4326").to_file(tmp_path / "p.geojson")
    with pytest.raises(AoiError, match="no area"):
        read_aoi(tmp_path / "p.geojson")
