"""The inference copy of a network (batch norm folded) detects what the eager network detects."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from fieldtruth.detectors.bundle import LoadedBundle, load_bundle
from fieldtruth.detectors.config import PRESETS
from fieldtruth.detectors.inference import fuse_batchnorm, inference_copy
from fieldtruth.detectors.predict import detect_scene
from fieldtruth.detectors.registry import build_model
from fieldtruth.imagery.synthetic import SyntheticScene
from fieldtruth.ingest.scene import open_scene

#: Largest difference of a heatmap probability between the eager and the fused network (float rounding).
SCORE_TOLERANCE = 1e-5


def vessels_network() -> nn.Module:
    """The vessels preset's network (an ensemble of CentreNets) with random batch-norm statistics."""
    config = PRESETS["vessels"]
    args = {**config.architecture_args, "in_channels": 4, "num_classes": 1,
            "norm_mean": [1200.0] * 4, "norm_std": [600.0] * 4}
    member = {"architecture": config.architecture, "args": args}
    model = build_model("ensemble", {"in_channels": 4, "num_classes": 1, "members": [member] * 2})
    torch.manual_seed(3)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def test_folding_batch_norm_keeps_the_outputs_and_leaves_the_original_alone() -> None:
    model = vessels_network()
    fused = inference_copy(model)
    x = torch.randn(1, 4, 150, 170)
    with torch.inference_mode():
        eager, fast = model(x), fused(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # training can go on from it
    assert torch.allclose(torch.sigmoid(eager.heatmap), torch.sigmoid(fast.heatmap), atol=SCORE_TOLERANCE)
    assert torch.allclose(eager.size, fast.size, atol=1e-4)


def test_folding_refuses_a_network_in_training_mode() -> None:
    with pytest.raises(ValueError, match="eval mode"):
        fuse_batchnorm(vessels_network().train())
    with pytest.raises(ValueError, match="eval mode"):
        fuse_batchnorm(nn.Sequential(nn.Conv2d(1, 1, 3), nn.BatchNorm2d(1)))


def test_a_loaded_bundle_detects_the_same_sites_as_its_eager_network(
    trained: tuple[LoadedBundle, list[float]], small_scene: SyntheticScene,
) -> None:
    bundle = load_bundle(trained[0].path)
    assert bundle.runner is not None and bundle.network is bundle.runner
    eager = dataclasses.replace(bundle, runner=None)
    data, valid = _scene_arrays(small_scene)
    fast_found = detect_scene(bundle, data, valid, tile=160, halo=40, threshold=0.05)
    eager_found = detect_scene(eager, data, valid, tile=160, halo=40, threshold=0.05)
    assert fast_found, "the briefly trained bundle should find something at threshold 0.05"
    assert len(fast_found) == len(eager_found)
    for a, b in zip(sorted(fast_found), sorted(eager_found), strict=True):
        assert (a.label, a.row, a.col) == pytest.approx((b.label, b.row, b.col), abs=1e-3)
        assert a.score == pytest.approx(b.score, abs=SCORE_TOLERANCE)


def _scene_arrays(scene: SyntheticScene) -> tuple[np.ndarray, np.ndarray]:
    data = open_scene(scene.path, hash_files=False).read(("blue", "green", "red", "nir"))
    return data, np.ones(data.shape[1:], dtype=bool)
