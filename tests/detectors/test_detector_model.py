"""Architectures: output shapes, any band count, receptive field, registry."""

from __future__ import annotations

import pytest
import torch

from fieldtruth.detectors.errors import UnknownArchitectureError
from fieldtruth.detectors.model import ARCHITECTURES, CentreNet, LayerSpec, build_model, receptive_field


@pytest.mark.parametrize(("bands", "h", "w"), [(1, 32, 32), (4, 37, 50), (6, 64, 48)])
def test_heatmap_is_half_resolution_for_any_band_count(bands: int, h: int, w: int) -> None:
    model = CentreNet(in_channels=bands, num_classes=3, width=8, dilations=(1, 2)).eval()
    with torch.no_grad():
        heads = model(torch.randn(2, bands, h, w))
    assert heads.heatmap.shape == (2, 3, -(-h // 2), -(-w // 2))
    assert heads.size is None


def test_size_head_is_optional() -> None:
    model = CentreNet(in_channels=4, num_classes=2, width=8, size_head=True).eval()
    with torch.no_grad():
        heads = model(torch.randn(1, 4, 32, 32))
    assert heads.size is not None and heads.size.shape == (1, 2, 16, 16)


def test_receptive_field_formula() -> None:
    # two 3x3 convs: 5 px; a stride-2 conv then a 3x3 conv: 3 + 2 * 2 = 7 px
    assert receptive_field([LayerSpec(3, 1, 1), LayerSpec(3, 1, 1)]) == 5
    assert receptive_field([LayerSpec(3, 2, 1), LayerSpec(3, 1, 1)]) == 7
    assert CentreNet(dilations=(1, 2, 3, 1)).receptive_field_px == 65


def test_reported_receptive_field_matches_gradient_extent() -> None:
    torch.manual_seed(0)
    model = CentreNet(in_channels=2, num_classes=1, width=8, dilations=(1, 2)).eval()
    size = 96
    x = torch.randn(1, 2, size, size, requires_grad=True)
    heads = model(x)
    heads.heatmap[0, 0, 24, 24].backward()
    touched = torch.nonzero(x.grad.abs().sum(dim=(0, 1)) > 0)
    extent_rows = int(touched[:, 0].max() - touched[:, 0].min()) + 1
    extent_cols = int(touched[:, 1].max() - touched[:, 1].min()) + 1
    assert extent_rows == extent_cols == model.receptive_field_px


def test_registry_builds_and_refuses_unknown_names() -> None:
    assert "centrenet" in ARCHITECTURES
    model = build_model("centrenet", {"in_channels": 3, "num_classes": 1, "width": 8, "dilations": [1, 2]})
    assert isinstance(model, CentreNet) and model.dilations == (1, 2)
    with pytest.raises(UnknownArchitectureError, match="not registered"):
        build_model("resnet9000", {})
    with pytest.raises(ValueError, match="do not fit"):
        build_model("centrenet", {"nonsense": 1})
