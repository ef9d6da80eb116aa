"""Fixtures for pipeline tests: a small synthetic scene and a quickly trained detector bundle."""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldtruth.detectors.train import TrainConfig, train_detector
from fieldtruth.imagery.synthetic import generate_scene


@pytest.fixture(scope="session")
def small_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 640 x 640 px synthetic scene (seed 7): several tiles of 256 px."""
    return generate_scene(tmp_path_factory.mktemp("scene") / "s7", seed=7, size=640).path


@pytest.fixture(scope="session")
def quick_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A detector trained for a few steps on another synthetic scene: weak, but a real bundle."""
    train = generate_scene(tmp_path_factory.mktemp("train") / "s3", seed=3, size=384).path
    out = tmp_path_factory.mktemp("bundle") / "quick.safetensors"
    config = TrainConfig.from_mapping(
        {"steps": 20, "batch_size": 8, "num_threads": 1, "validation": {"tile": 256}}, "demo"
    )
    train_detector([train], out, config)
    return out
