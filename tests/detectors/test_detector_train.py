"""Training: the loss falls, the bundle is complete and round-trips, runs are seeded, bad input is refused."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import shapely
import torch

from fieldtruth.detectors.bundle import LoadedBundle, load_bundle
from fieldtruth.detectors.errors import InputMismatchError, LabelError, TrainingError
from fieldtruth.detectors.predict import detect_array
from fieldtruth.detectors.report import evaluate_scenes
from fieldtruth.detectors.train import TrainConfig, focal_loss, one_cycle_lr, train_detector
from fieldtruth.imagery.synthetic import SyntheticScene, generate_scene
from fieldtruth.ingest.scene import open_scene


def test_loss_falls(trained: tuple[LoadedBundle, list[float]], quick_config: TrainConfig) -> None:
    _, losses = trained
    assert len(losses) == quick_config.steps
    assert all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-8:]) < 0.5 * np.mean(losses[:4])


def test_card_records_training(
    trained: tuple[LoadedBundle, list[float]], small_scene: SyntheticScene
) -> None:
    bundle, _ = trained
    card = bundle.card
    assert card.classes == ("brick_kiln", "fishing_camp")
    assert card.bands == ("blue", "green", "red", "nir") and card.gsd_m == 10.0
    assert 0.05 <= card.threshold <= 0.95
    assert card.receptive_field_px == bundle.model.receptive_field_px
    assert all(s > 0 for s in card.norm_std) and 500 < card.norm_mean[3] < 5000
    assert card.split["validation"] == [] and "training" in card.split["threshold_chosen_on"]
    assert card.metrics.measured_on_held_out is False
    assert card.metrics.overall is not None
    assert card.metrics.threshold == pytest.approx(card.threshold, abs=1e-4)
    assert card.metrics.steps_run == 40 and card.metrics.per_class.keys() == {"brick_kiln", "fishing_camp"}
    assert card.training_data[0]["provenance"][0]["sha256"]


def test_bundle_round_trips_outputs(
    trained: tuple[LoadedBundle, list[float]], small_scene: SyntheticScene
) -> None:
    bundle, _ = trained
    again = load_bundle(bundle.path)
    assert again.sha256 == bundle.sha256
    scene = open_scene(small_scene.path)
    data = scene.read(bundle.card.bands)[:, :160, :160]
    valid = np.ones(data.shape[1:], dtype=bool)
    assert detect_array(bundle, data, valid, threshold=0.01) == detect_array(
        again, data, valid, threshold=0.01
    )
    with pytest.raises(InputMismatchError):
        detect_array(again, data[:3], valid)


def test_training_is_seeded(tmp_path: Path, small_scene: SyntheticScene, quick_config: TrainConfig) -> None:
    config = quick_config.merged({"steps": 6, "chips": {"mine_at": []}})
    a = train_detector([small_scene.path], tmp_path / "a.safetensors", config)
    b = train_detector([small_scene.path], tmp_path / "b.safetensors", config)
    assert a.card.weights_sha256 == b.card.weights_sha256
    c = train_detector([small_scene.path], tmp_path / "c.safetensors", dataclasses.replace(config, seed=1))
    assert c.card.weights_sha256 != a.card.weights_sha256


def test_demo_training_gives_the_same_weights_on_a_slow_machine(
    tmp_path: Path, small_scene: SyntheticScene, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo preset (fewer steps, on a small scene) twice: once as is, once with every clock running
    an hour per reading, as on a machine too busy to keep up. Training runs its steps, never a clock."""
    config = TrainConfig.demo().merged({"steps": 8, "chips": {"mine_at": [0.5]}, "validation": {"tile": 192}})
    quick = train_detector([small_scene.path], tmp_path / "quick.safetensors", config)
    hours = iter(range(10**9))
    for clock in ("perf_counter", "monotonic", "time"):
        monkeypatch.setattr(time, clock, lambda: 3600.0 * next(hours))
    slow = train_detector([small_scene.path], tmp_path / "slow.safetensors", config)
    assert slow.card.metrics.steps_run == quick.card.metrics.steps_run == 8
    assert slow.card.weights_sha256 == quick.card.weights_sha256


def test_several_scenes_cross_fit_the_threshold(
    tmp_path: Path, small_scene: SyntheticScene, quick_config: TrainConfig
) -> None:
    others = [generate_scene(tmp_path / f"s{k}", seed=k, size=192) for k in (6, 8)]
    before = torch.get_num_threads()
    config = quick_config.merged({"steps": 4, "num_threads": 1, "chips": {"mine_at": []}})
    folders = [small_scene.path, *(o.path for o in others)]
    bundle = train_detector(folders, tmp_path / "m.safetensors", config)
    card = bundle.card
    assert card.split["train"] == ["synthetic-seed5-384", "synthetic-seed6-192", "synthetic-seed8-192"]
    assert card.split["validation"] == [] and card.split["threshold_chosen_on"].startswith(
        "training scenes, cross"
    )
    expected = card.split["expected_on_new_scenes"]
    assert expected["folds"] == 3 and expected["f1"] == card.metrics.overall.f1
    assert expected["ci95"][0] <= expected["f1"] <= expected["ci95"][1]
    assert card.metrics.measured_on_held_out is True and "cross-fitted" in card.metrics.note
    assert card.metrics.threshold == pytest.approx(card.threshold, abs=1e-4)
    assert torch.get_num_threads() == before  # restored afterwards


def test_no_labelled_site_is_a_training_error(tmp_path: Path, quick_config: TrainConfig) -> None:
    empty = generate_scene(tmp_path / "empty", seed=2, size=128, n_kilns=0, n_camps=0)
    with pytest.raises(LabelError, match="hold no feature"):  # an empty label file is refused as such
        train_detector([empty.path], tmp_path / "x.safetensors", quick_config)
    kilns = generate_scene(tmp_path / "kilns", seed=2, size=128)
    with pytest.raises(TrainingError, match="no labelled site"):
        train_detector(
            [kilns.path], tmp_path / "x.safetensors", dataclasses.replace(quick_config, classes=("vessel",))
        )
    with pytest.raises(TrainingError, match="at least one"):
        train_detector([], tmp_path / "x.safetensors", quick_config)


def test_config_is_validated_and_demo_defaults() -> None:
    with pytest.raises(ValueError, match="chips.size must be an even number"):
        TrainConfig.from_mapping({"chips": {"size": 33}})
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="checkpoints.every"):
        TrainConfig.from_mapping({"checkpoints": {"every": 0}})
    demo = TrainConfig.demo()
    assert demo.classes == ("brick_kiln", "fishing_camp") and demo.num_threads == 2 and demo.steps == 900
    assert TrainConfig.from_mapping({"steps": 5}, "demo").steps == 5


def test_focal_loss_and_schedule() -> None:
    target = torch.zeros(1, 1, 4, 4)
    target[0, 0, 1, 1] = 1.0
    good = torch.full((1, 1, 4, 4), -8.0)
    good[0, 0, 1, 1] = 8.0
    assert focal_loss(good, target) < 0.01 < focal_loss(torch.zeros(1, 1, 4, 4), target)
    assert one_cycle_lr(0.15, 1.0) == pytest.approx(1.0)
    assert one_cycle_lr(0.0, 1.0) == pytest.approx(0.04)
    assert one_cycle_lr(1.0, 1.0) < 1e-5


def test_size_head_trains_and_round_trips(
    tmp_path: Path, small_scene: SyntheticScene, quick_config: TrainConfig
) -> None:
    args = {"width": 8, "dilations": [1, 2], "size_head": True}
    config = quick_config.merged({"steps": 6, "chips": {"mine_at": []}, "architecture_args": args})
    bundle = train_detector([small_scene.path], tmp_path / "s.safetensors", config)
    assert bundle.card.architecture_args["size_head"] is True
    assert load_bundle(bundle.path).model.size is not None


def test_ndwi_input_and_suppression_choice_train_and_round_trip(
    tmp_path: Path, small_scene: SyntheticScene, quick_config: TrainConfig
) -> None:
    args = {"width": 8, "dilations": [1, 2], "size_head": True, "indices": [[1, 3]]}
    config = quick_config.merged(
        {
            "steps": 6,
            "architecture_args": args,
            "chips": {"mine_at": []},
            "validation": {"min_distance_choices": [4, 8], "box_suppression_choices": [0.5, 1.0]},
        }
    )
    bundle = train_detector([small_scene.path], tmp_path / "ndwi.safetensors", config)
    card = bundle.card
    assert card.architecture_args["indices"] == [[1, 3]] and len(card.architecture_args["norm_mean"]) == 4
    assert card.receptive_field_px == bundle.model.receptive_field_px
    tried = card.metrics.suppression_tried
    assert [t[:2] for t in tried] == [(4, 0.5), (4, 1.0), (8, 0.5), (8, 1.0)]
    best = max(t[2] for t in tried)
    assert (card.min_distance_px, card.box_suppression) == next(t[:2] for t in tried if t[2] == best)
    assert card.metrics.overall.f1 == pytest.approx(best, abs=1e-4)
    loaded = load_bundle(bundle.path)
    assert (loaded.card.min_distance_px, loaded.card.box_suppression) == (
        card.min_distance_px,
        card.box_suppression,
    )


def test_a_background_scene_trains_beside_labelled_ones_and_scores_as_negatives(
    tmp_path: Path, quick_config: TrainConfig, trained: tuple[LoadedBundle, list[float]]
) -> None:
    """A scene declared background (no site) is trained on (random chips) and evaluated: every detection
    there is a false positive. Undeclared, the same empty file is refused (the test above)."""
    kilns = generate_scene(tmp_path / "kilns", seed=2, size=128)
    background = generate_scene(tmp_path / "background", seed=3, size=128, n_kilns=0, n_camps=0)
    (background.path / "labels.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": [], "background": True})
    )
    bundle = train_detector(
        [kilns.path, background.path], tmp_path / "b.safetensors", dataclasses.replace(quick_config, steps=4)
    )
    assert bundle.card.split["train"] == [open_scene(p).id for p in (kilns.path, background.path)]
    [result] = evaluate_scenes(trained[0], [background.path], tolerance_px=1.0)
    assert result.scores.n_labels == 0 and result.scores.tp == 0
    assert result.scores.fp == len(result.scores.ranked) > 0


def test_every_crossfitting_fold_trains_on_sites() -> None:
    """Background scenes (no site) are dealt into folds after the labelled ones: no fold trains on
    background alone, and there are never more folds than scenes with sites."""
    from types import SimpleNamespace

    from fieldtruth.detectors.labels import PixelLabel
    from fieldtruth.detectors.threshold import crossfit_folds

    site = [PixelLabel("brick_kiln", shapely.box(0, 0, 3, 3))]
    pattern = [[], site, [], [], site, site, []]
    scenes = [SimpleNamespace(labels=labels) for labels in pattern]
    folds = crossfit_folds(scenes, ("brick_kiln",))
    assert sorted(set(folds)) == [0, 1, 2]
    for fold in set(folds):
        trained_on = [pattern[i] for i, f in enumerate(folds) if f != fold]
        assert any(trained_on), f"fold {fold} would train on background only"
    assert set(crossfit_folds(scenes[:2] + scenes[4:5], ("brick_kiln",))) == {0, 1}
    assert crossfit_folds(scenes, ("fishing_camp",)) == [0] * len(scenes)

