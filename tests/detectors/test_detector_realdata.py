"""Real data (../shared/data/sen2ships): labels of a Sentinel-2 port land on its pixel grid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fieldtruth.detectors.data import load_training_scene

SEN2SHIPS = Path(__file__).resolve().parents[3] / "shared" / "data" / "sen2ships"


@pytest.mark.skipif(not SEN2SHIPS.is_dir(), reason="../shared/data/sen2ships is absent (fresh clone without shared data)")
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
