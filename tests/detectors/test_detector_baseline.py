"""The non-learned ring baseline: a bundle like any other, that finds the synthetic kilns."""

from __future__ import annotations

from pathlib import Path

from fieldtruth.detectors.baseline import fit_baseline
from fieldtruth.detectors.bundle import load_bundle
from fieldtruth.detectors.data import load_training_scene
from fieldtruth.detectors.evaluate import score_detections
from fieldtruth.detectors.predict import detect_array
from fieldtruth.imagery.synthetic import SyntheticScene


def test_baseline_bundle_round_trips_and_finds_kilns(tmp_path: Path, small_scene: SyntheticScene) -> None:
    bundle = fit_baseline([small_scene.path], tmp_path / "baseline.safetensors")
    again = load_bundle(bundle.path)
    assert again.card.architecture == "baseline-ring" and again.card.name == "fieldtruth-baseline-ring"
    assert 0.0 < again.card.threshold < 1.0
    scene = load_training_scene(small_scene.path, again.card.bands)
    found = detect_array(again, scene.data, scene.valid)
    kilns = [lab for lab in scene.labels if lab.label == "brick_kiln"]
    scores = score_detections([d for d in found if d.label == "brick_kiln"], kilns)
    assert scores.recall >= 0.75 and scores.precision >= 0.75
