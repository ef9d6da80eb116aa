"""Scenes built for one set of a split are refused in another role by training and evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fieldtruth.detectors.errors import SplitCrossedError
from fieldtruth.detectors.report import evaluate_bundle
from fieldtruth.detectors.scenesplit import check_roles, recorded_split
from fieldtruth.detectors.train import train_detector


def folder_of(root: Path, name: str, split: str | None) -> Path:
    folder = root / name
    folder.mkdir()
    if split is not None:
        (folder / "split.json").write_text(json.dumps({"split": split}))
    return folder


@pytest.mark.parametrize(("role", "split", "refused"), [
    ("training", "train", False), ("training", "validation", True), ("training", "test", True),
    ("validation", "validation", False), ("validation", "train", False), ("validation", "test", True),
    ("evaluation", "test", False), ("evaluation", "train", True), ("evaluation", "validation", True),
    ("evaluation", None, False),
])
def test_roles_and_sets(tmp_path: Path, role: str, split: str | None, refused: bool) -> None:
    folder = folder_of(tmp_path, "scene", split)
    if refused:
        with pytest.raises(SplitCrossedError, match=rf"{role} refuses .*/scene' \({split}\)"):
            check_roles([folder], role)
    else:
        check_roles([folder], role)


def test_a_malformed_record_is_refused(tmp_path: Path) -> None:
    folder = folder_of(tmp_path, "scene", "holdout")
    with pytest.raises(SplitCrossedError, match="names set 'holdout'"):
        recorded_split(folder)
    (folder / "split.json").write_text("[1, 2")
    with pytest.raises(SplitCrossedError, match="cannot be read as a split record"):
        recorded_split(folder)


def test_training_refuses_a_test_scene_before_reading_it(tmp_path: Path, quick_config) -> None:  # noqa: ANN001
    train = folder_of(tmp_path, "a", "train")
    test = folder_of(tmp_path, "b", "test")
    with pytest.raises(SplitCrossedError, match="validation refuses"):
        train_detector([train], tmp_path / "x.safetensors", quick_config, val_dirs=[test])
    assert not (tmp_path / "x.safetensors").exists()


def test_evaluation_refuses_a_training_scene(tmp_path: Path, trained) -> None:  # noqa: ANN001
    with pytest.raises(SplitCrossedError, match="evaluation refuses"):
        evaluate_bundle(trained[0], [folder_of(tmp_path, "a", "train")], tmp_path / "eval")
    assert not (tmp_path / "eval").exists()
