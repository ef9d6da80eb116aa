"""Label files of every supported kind land on the same pixels; bad label files get clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import Point, box

from fieldtruth.detectors.data import load_training_scene
from fieldtruth.detectors.errors import LabelError
from fieldtruth.detectors.labels import find_label_file, read_labels
from fieldtruth.imagery.synthetic import SyntheticScene


def _frame(scene: SyntheticScene) -> gpd.GeoDataFrame:
    return gpd.read_file(scene.labels_path)


def _bounds(labels: list) -> list[tuple[float, ...]]:
    return [tuple(round(v, 2) for v in lab.geometry.bounds) for lab in labels]


@pytest.mark.parametrize("suffix", [".gpkg", ".shp", ".parquet"])
def test_other_formats_and_crs_give_the_same_pixels(
    tmp_path: Path, small_scene: SyntheticScene, suffix: str
) -> None:
    expected = _bounds(read_labels(small_scene.labels_path, small_scene.crs, small_scene.transform))
    frame = _frame(small_scene).to_crs(3857)  # another CRS than the scene's (UTM) and than GeoJSON's
    path = tmp_path / f"labels{suffix}"
    frame.to_parquet(path) if suffix == ".parquet" else frame.to_file(path)
    got = _bounds(read_labels(path, small_scene.crs, small_scene.transform))
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert a == pytest.approx(b, abs=0.05)


def test_points_become_small_boxes(tmp_path: Path, small_scene: SyntheticScene) -> None:
    frame = _frame(small_scene)
    frame["geometry"] = frame.geometry.to_crs(small_scene.crs).centroid.to_crs(frame.crs)
    path = tmp_path / "labels.gpkg"
    frame.to_file(path)
    labels = read_labels(path, small_scene.crs, small_scene.transform)
    assert all(lab.geometry.area == pytest.approx(9.0) for lab in labels)


def test_coco_in_pixels_ignores_the_images_list(tmp_path: Path, small_scene: SyntheticScene) -> None:
    labels = read_labels(small_scene.labels_path, small_scene.crs, small_scene.transform)
    names = sorted({lab.label for lab in labels})
    coco = {
        "images": [{"id": 7, "file_name": "other.png"}],
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(names)],
        "annotations": [
            {
                "id": j,
                "image_id": 99,
                "category_id": names.index(lab.label) + 1,
                "bbox": [
                    lab.geometry.bounds[0],
                    lab.geometry.bounds[1],
                    lab.geometry.bounds[2] - lab.geometry.bounds[0],
                    lab.geometry.bounds[3] - lab.geometry.bounds[1],
                ],
            }
            for j, lab in enumerate(labels)
        ],
    }
    path = tmp_path / "labels_coco.json"
    path.write_text(json.dumps(coco))
    got = read_labels(path, small_scene.crs, small_scene.transform)
    assert _bounds(got) == _bounds(labels) and [g.label for g in got] == [lab.label for lab in labels]
    assert find_label_file(tmp_path) == path


def test_empty_label_file_is_refused(tmp_path: Path, small_scene: SyntheticScene) -> None:
    path = tmp_path / "labels.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(LabelError, match="hold no feature"):
        read_labels(path, small_scene.crs, small_scene.transform)


def test_a_declared_background_scene_reads_as_no_site(tmp_path: Path, small_scene: SyntheticScene) -> None:
    path = tmp_path / "labels.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [], "background": True}))
    assert read_labels(path, small_scene.crs, small_scene.transform, shape=(384, 384)) == []


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"type": "FeatureCollection", "features": [], "background": "yes"}, "must be true or false"),
        ({"type": "FeatureCollection", "features": [], "background": False}, "hold no feature"),
        ({"type": "FeatureCollection", "background": True, "features": [
            {"type": "Feature", "properties": {"class": "vessel"},
             "geometry": {"type": "Point", "coordinates": [0.0, 0.0]}}]}, "declare a background scene but"),
    ],
)
def test_a_background_declaration_must_be_unambiguous(
    tmp_path: Path, small_scene: SyntheticScene, document: dict, message: str
) -> None:
    path = tmp_path / "labels.geojson"
    path.write_text(json.dumps(document))
    with pytest.raises(LabelError, match=message):
        read_labels(path, small_scene.crs, small_scene.transform)


def test_an_empty_geopackage_is_refused(tmp_path: Path, small_scene: SyntheticScene) -> None:
    """Only GeoJSON can declare a background scene; an empty layer of another format is a mistake."""
    path = tmp_path / "labels.gpkg"
    gpd.GeoDataFrame({"class": []}, geometry=[], crs=4326).to_file(path)
    with pytest.raises(LabelError, match="hold no feature"):
        read_labels(path, small_scene.crs, small_scene.transform)


def test_projected_coordinates_without_crs_are_refused(tmp_path: Path, small_scene: SyntheticScene) -> None:
    frame = _frame(small_scene).to_crs(small_scene.crs)
    data = json.loads(frame.to_json())
    data.pop("crs", None)
    path = tmp_path / "labels.geojson"
    path.write_text(json.dumps(data))
    with pytest.raises(LabelError, match="declare no CRS"):
        read_labels(path, small_scene.crs, small_scene.transform)


def test_labels_outside_the_imagery_are_refused(tmp_path: Path, small_scene: SyntheticScene) -> None:
    frame = gpd.GeoDataFrame({"class": ["vessel"]}, geometry=[box(10.0, 10.0, 10.001, 10.001)], crs=4326)
    path = tmp_path / "labels.gpkg"
    frame.to_file(path)
    with pytest.raises(LabelError, match="outside the imagery"):
        read_labels(path, small_scene.crs, small_scene.transform, shape=(384, 384))


def test_scene_folder_without_labels_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LabelError, match="no label file"):
        find_label_file(tmp_path)


def test_scene_loads_with_a_geoparquet_label_file(tmp_path: Path, small_scene: SyntheticScene) -> None:
    folder = tmp_path / "scene"
    folder.mkdir()
    for f in small_scene.path.iterdir():
        if not f.name.startswith("labels"):
            (folder / f.name).symlink_to(f)
    frame = _frame(small_scene)
    frame.loc[len(frame)] = {"class": "brick_kiln", "geometry": Point(0, 0)}  # far away: outside
    frame.to_parquet(folder / "labels.parquet")
    with pytest.raises(LabelError, match="outside the imagery"):
        load_training_scene(folder, ("blue", "green", "red", "nir"))
