"""Checkpoints: an interrupted run resumed from its checkpoint ends with the same weights; no pickle."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fieldtruth.detectors.checkpoint import CHECKPOINT_NAME
from fieldtruth.detectors.errors import TrainingError
from fieldtruth.detectors.train import TrainConfig, train_detector
from fieldtruth.imagery.synthetic import SyntheticScene


class Interrupted(Exception):
    """Stands for a killed process."""


def test_resume_continues_exactly(
    tmp_path: Path, small_scene: SyntheticScene, quick_config: TrainConfig
) -> None:
    config = quick_config.merged(
        {
            "steps": 6,
            "chips": {"mine_at": []},
            "checkpoints": {"every": 3},
            "architecture_args": {"width": 8, "dilations": [1, 2]},
        }
    )
    whole = train_detector([small_scene.path], tmp_path / "whole.safetensors", config)

    def die(step: int, total: int, loss: float) -> None:
        if step == 4:
            raise Interrupted

    folder = tmp_path / "ckpt"
    broken = config.merged({"checkpoints": {"folder": str(folder)}})
    with pytest.raises(Interrupted):
        train_detector([small_scene.path], tmp_path / "x.safetensors", broken, progress=die)
    head = (folder / CHECKPOINT_NAME).read_bytes()[:8]
    assert int.from_bytes(head, "little") < 10_000_000  # a safetensors header, not a pickle
    resumed = train_detector(
        [small_scene.path], tmp_path / "resumed.safetensors", broken.merged({"checkpoints": {"resume": True}})
    )
    assert resumed.card.weights_sha256 == whole.card.weights_sha256
    assert resumed.card.metrics.steps_run == 6


def test_resume_refuses_other_settings_or_no_checkpoint(
    tmp_path: Path, small_scene: SyntheticScene, quick_config: TrainConfig
) -> None:
    folder = tmp_path / "ckpt"
    config = quick_config.merged(
        {
            "steps": 2,
            "chips": {"mine_at": []},
            "checkpoints": {"folder": str(folder)},
            "architecture_args": {"width": 8, "dilations": [1]},
        }
    )
    resume = {"checkpoints": {"resume": True}}
    with pytest.raises(TrainingError, match="no checkpoint"):
        train_detector([small_scene.path], tmp_path / "a.safetensors", config.merged(resume))
    train_detector([small_scene.path], tmp_path / "a.safetensors", config)
    with pytest.raises(TrainingError, match="other scenes or settings"):
        train_detector([small_scene.path], tmp_path / "b.safetensors", config.merged({**resume, "lr": 1e-2}))


def test_validation_scenes_are_never_trained_on(
    tmp_path: Path, small_scene: SyntheticScene, quick_config: TrainConfig
) -> None:
    with pytest.raises(TrainingError, match="both training and validation"):
        train_detector(
            [small_scene.path], tmp_path / "x.safetensors", quick_config, val_dirs=[small_scene.path]
        )


def test_presets_and_mappings() -> None:
    vessels = TrainConfig.vessels()
    assert (
        vessels.classes == ("vessel",)
        and vessels.architecture_args["indices"] == [[1, 3]]
        and vessels.gsd_m is None
    )
    config = TrainConfig.from_mapping(
        {"steps": 7, "chips": {"gain": [0.9, 1.1]}, "classes": ["a"]}, "vessels"
    )
    assert config.steps == 7 and config.chips.gain == (0.9, 1.1) and config.classes == ("a",)
    assert config.chips.size == 128 and config.validation == vessels.validation  # the rest of the preset
    narrow = TrainConfig.from_mapping({"architecture_args": {"width": 8}}, "vessels")
    assert narrow.architecture_args == {"width": 8}  # a plain mapping is replaced, not merged
    assert TrainConfig.vessels() is not TrainConfig.vessels()  # a fresh copy each time: presets stay put
    with pytest.raises(ValueError, match="unknown training setting"):
        TrainConfig.from_mapping({"stepz": 1})
    with pytest.raises(ValueError, match="unknown setting 'chips.sise'.*'size'"):
        TrainConfig.from_mapping({"chips": {"sise": 64}})
    with pytest.raises(ValueError, match="steps: Input should be a valid integer"):
        TrainConfig.from_mapping({"steps": "many"})
    with pytest.raises(ValueError, match="preset"):
        TrainConfig.from_mapping({}, "nope")


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("chip_size", "is now 'chips.size': write it as chips: {size: ...}"),
        ("checkpoint_dir", "is now 'checkpoints.folder'"),
        ("eval_tile", "is now 'validation.tile'"),
        ("open_water_negatives", "was removed: tried on sen2ships and not adopted"),
        ("target_shape", "was removed"),
        ("haze", "was removed"),
        ("time_budget_s", "never against a clock"),
    ],
)
def test_settings_of_earlier_versions_say_where_they_went(key: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        TrainConfig.from_mapping({key: 1}, "vessels")


def test_ensemble_of_two_seeds_round_trips(
    tmp_path: Path, small_scene: SyntheticScene, quick_config: TrainConfig
) -> None:
    config = quick_config.merged(
        {
            "steps": 3,
            "ensemble": 2,
            "chips": {"mine_at": []},
            "architecture_args": {"width": 8, "dilations": [1]},
        }
    )
    bundle = train_detector([small_scene.path], tmp_path / "e.safetensors", config)
    assert bundle.card.architecture == "ensemble" and len(bundle.card.architecture_args["members"]) == 2
    assert len(bundle.model.members) == 2


def test_resume_keeps_the_mined_hard_negatives(
    tmp_path: Path,
    small_scene: SyntheticScene,
    quick_config: TrainConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fieldtruth.detectors import fit

    # the mining at step 3 finds one hard negative; from then on every chip is drawn around it
    monkeypatch.setattr(fit, "_mine_hard_negatives", lambda *a: [(0, 40.0, 40.0)])
    config = quick_config.merged(
        {
            "steps": 6,
            "checkpoints": {"every": 2},
            "architecture_args": {"width": 8, "dilations": [1, 2]},
            "chips": {"mine_at": [0.5], "positive_fraction": 0.0, "hard_fraction": 1.0},
        }
    )
    whole = train_detector([small_scene.path], tmp_path / "whole.safetensors", config)

    def die(step: int, total: int, loss: float) -> None:
        if step == 5:
            raise Interrupted

    broken = config.merged({"checkpoints": {"folder": str(tmp_path / "ckpt")}})
    with pytest.raises(Interrupted):
        train_detector([small_scene.path], tmp_path / "x.safetensors", broken, progress=die)
    monkeypatch.setattr(
        fit, "_mine_hard_negatives", lambda *a: pytest.fail("a resumed run must not mine again")
    )
    resumed = train_detector(
        [small_scene.path], tmp_path / "resumed.safetensors", broken.merged({"checkpoints": {"resume": True}})
    )
    assert resumed.card.weights_sha256 == whole.card.weights_sha256
