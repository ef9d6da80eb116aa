"""Checkpoints: an interrupted run resumed from its checkpoint ends with the same weights; no pickle."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fieldtruth.detectors.checkpoint import CHECKPOINT_NAME
from fieldtruth.detectors.errors import TrainingError
from fieldtruth.detectors.train import TrainConfig, train_detector
from fieldtruth.imagery.synthetic import SyntheticScene


class Interrupted(Exception):
    """Stands for a killed process."""


def test_resume_continues_exactly(tmp_path: Path, small_scene: SyntheticScene, quick_config: TrainConfig) -> None:
    config = dataclasses.replace(quick_config, steps=6, mine_at=(), checkpoint_every=3,
                                 architecture_args={"width": 8, "dilations": [1, 2]})
    whole = train_detector([small_scene.path], tmp_path / "whole.safetensors", config)

    def die(step: int, total: int, loss: float) -> None:
        if step == 4:
            raise Interrupted

    folder = tmp_path / "ckpt"
    broken = dataclasses.replace(config, checkpoint_dir=str(folder))
    with pytest.raises(Interrupted):
        train_detector([small_scene.path], tmp_path / "x.safetensors", broken, progress=die)
    head = (folder / CHECKPOINT_NAME).read_bytes()[:8]
    assert int.from_bytes(head, "little") < 10_000_000  # a safetensors header, not a pickle
    resumed = train_detector([small_scene.path], tmp_path / "resumed.safetensors", dataclasses.replace(broken, resume=True))
    assert resumed.card.weights_sha256 == whole.card.weights_sha256
    assert resumed.card.metrics["steps_run"] == 6


def test_resume_refuses_other_settings_or_no_checkpoint(tmp_path: Path, small_scene: SyntheticScene, quick_config: TrainConfig) -> None:
    folder = tmp_path / "ckpt"
    config = dataclasses.replace(quick_config, steps=2, mine_at=(), checkpoint_dir=str(folder),
                                 architecture_args={"width": 8, "dilations": [1]})
    with pytest.raises(TrainingError, match="no checkpoint"):
        train_detector([small_scene.path], tmp_path / "a.safetensors", dataclasses.replace(config, resume=True))
    train_detector([small_scene.path], tmp_path / "a.safetensors", config)
    with pytest.raises(TrainingError, match="other scenes or settings"):
        train_detector([small_scene.path], tmp_path / "b.safetensors", dataclasses.replace(config, resume=True, lr=1e-2))


def test_validation_scenes_are_never_trained_on(tmp_path: Path, small_scene: SyntheticScene, quick_config: TrainConfig) -> None:
    with pytest.raises(TrainingError, match="both training and validation"):
        train_detector([small_scene.path], tmp_path / "x.safetensors", quick_config, val_dirs=[small_scene.path])


def test_presets_and_mappings() -> None:
    vessels = TrainConfig.vessels()
    assert vessels.classes == ("vessel",) and vessels.architecture_args["indices"] == [[1, 3]] and vessels.gsd_m is None
    config = TrainConfig.from_mapping({"steps": 7, "gain": [0.9, 1.1], "classes": ["a"]}, "vessels")
    assert config.steps == 7 and config.gain == (0.9, 1.1) and config.classes == ("a",)
    with pytest.raises(ValueError, match="unknown training setting"):
        TrainConfig.from_mapping({"stepz": 1})
    with pytest.raises(ValueError, match="preset"):
        TrainConfig.from_mapping({}, "nope")


def test_ensemble_of_two_seeds_round_trips(tmp_path: Path, small_scene: SyntheticScene, quick_config: TrainConfig) -> None:
    config = dataclasses.replace(quick_config, steps=3, mine_at=(), ensemble=2, architecture_args={"width": 8, "dilations": [1]})
    bundle = train_detector([small_scene.path], tmp_path / "e.safetensors", config)
    assert bundle.card.architecture == "ensemble" and len(bundle.card.architecture_args["members"]) == 2
    assert len(bundle.model.members) == 2


def test_resume_keeps_the_places_the_loss_ignores(
    tmp_path: Path, small_scene: SyntheticScene, quick_config: TrainConfig, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fieldtruth.detectors import fit

    # the mining at step 3 finds one hard negative and one place in open water the loss is to ignore
    monkeypatch.setattr(fit, "_mine_hard_negatives", lambda *a: ([(0, 40.0, 40.0)], [(0, 50.0, 50.0)]))
    config = dataclasses.replace(quick_config, steps=6, mine_at=(0.5,), checkpoint_every=2, open_water_negatives="ignore",
                                 positive_fraction=0.0, hard_fraction=1.0, architecture_args={"width": 8, "dilations": [1, 2]})
    whole = train_detector([small_scene.path], tmp_path / "whole.safetensors", config)
    without = train_detector([small_scene.path], tmp_path / "without.safetensors",
                             dataclasses.replace(config, open_water_negatives="skip"))
    assert without.card.weights_sha256 != whole.card.weights_sha256  # the ignored place changes the training

    def die(step: int, total: int, loss: float) -> None:
        if step == 5:
            raise Interrupted

    broken = dataclasses.replace(config, checkpoint_dir=str(tmp_path / "ckpt"))
    with pytest.raises(Interrupted):
        train_detector([small_scene.path], tmp_path / "x.safetensors", broken, progress=die)
    monkeypatch.setattr(fit, "_mine_hard_negatives", lambda *a: pytest.fail("a resumed run must not mine again"))
    resumed = train_detector([small_scene.path], tmp_path / "resumed.safetensors", dataclasses.replace(broken, resume=True))
    assert resumed.card.weights_sha256 == whole.card.weights_sha256
