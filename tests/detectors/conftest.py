"""Fixtures for detector tests: a small seeded synthetic scene and a briefly trained bundle."""

from __future__ import annotations

import pytest

from fieldtruth.detectors.bundle import LoadedBundle
from fieldtruth.detectors.train import TrainConfig, train_detector
from fieldtruth.imagery.synthetic import SyntheticScene, generate_scene

#: A few steps of a narrow network: enough for the loss to fall, fast on two cores.
QUICK = TrainConfig.from_mapping({
    "seed": 0, "steps": 40, "batch_size": 8, "lr": 3e-3, "classes": ["brick_kiln", "fishing_camp"],
    "architecture_args": {"width": 16, "dilations": [1, 2, 1]}, "num_threads": 2,
    "chips": {"size": 64, "mine_at": [0.5]}, "validation": {"tile": 192},
})


@pytest.fixture(scope="session")
def quick_config() -> TrainConfig:
    """The training settings of the :func:`trained` fixture."""
    return QUICK


@pytest.fixture(scope="session")
def small_scene(tmp_path_factory: pytest.TempPathFactory) -> SyntheticScene:
    """A 384 x 384 px synthetic scene (seed 5)."""
    return generate_scene(tmp_path_factory.mktemp("det-scene") / "s5", seed=5, size=384)


@pytest.fixture(scope="session")
def trained(
    tmp_path_factory: pytest.TempPathFactory, small_scene: SyntheticScene
) -> tuple[LoadedBundle, list[float]]:
    """A bundle trained for a few steps on the small scene, and the loss of every step."""
    losses: list[float] = []
    out = tmp_path_factory.mktemp("det-bundle") / "quick.safetensors"
    bundle = train_detector(
        [small_scene.path], out, QUICK, progress=lambda step, total, loss: losses.append(loss)
    )
    return bundle, losses
