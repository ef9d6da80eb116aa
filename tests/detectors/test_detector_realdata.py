"""Real data (sen2ships, see :mod:`fieldtruth.tests.data.shared`): a port's labels land on its pixel grid."""

from __future__ import annotations

import json

import pytest

from fieldtruth.detectors.data import load_training_scene
from fieldtruth.tests.data.shared import needs_shared_data, shared_data_root

SEN2SHIPS = shared_data_root() / "sen2ships"


@needs_shared_data("sen2ships")
def test_sen2ships_port_loads_with_its_vessel_labels() -> None:
    port = SEN2SHIPS / "algiers"
    meta = json.loads((port / "scene.json").read_text())
    scene = load_training_scene(port, ("blue", "green", "red", "nir"))
    assert scene.data.shape == (4, meta["height"], meta["width"])
    assert len(scene.labels) == meta["labels"]
    assert {lab.label for lab in scene.labels} == {"vessel"}
    for lab in scene.labels:
        row, col = lab.centre
        assert 0 <= row < meta["height"] and 0 <= col < meta["width"]
        minx, miny, maxx, maxy = lab.geometry.bounds
        assert 1 <= max(maxx - minx, maxy - miny) <= 60  # vessels are 5 to 50 pixels long


@needs_shared_data("sen2ships")
@pytest.mark.parametrize("port", ["busan", "klang"])
def test_coco_and_geojson_labels_of_a_port_agree(port: str) -> None:
    from fieldtruth.detectors.labels import read_labels
    from fieldtruth.ingest.scene import open_scene

    scene = open_scene(SEN2SHIPS / port, hash_files=False)
    geo = read_labels(SEN2SHIPS / port / "labels.geojson", scene.crs, scene.transform)
    coco = read_labels(SEN2SHIPS / port / "labels_coco.json", scene.crs, scene.transform)
    assert len(geo) == len(coco) > 0
    for a, b in zip(
        sorted(lab.geometry.bounds for lab in geo), sorted(lab.geometry.bounds for lab in coco), strict=True
    ):
        assert a == pytest.approx(b, abs=0.5)
