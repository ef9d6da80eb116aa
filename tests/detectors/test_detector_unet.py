"""The small U-Net: full-resolution heatmaps, an honest receptive field, its log input, bundles."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fieldtruth.detectors.bundle import ModelCard, load_bundle, save_bundle
from fieldtruth.detectors.model import output_stride
from fieldtruth.detectors.registry import build_model
from fieldtruth.detectors.scangrid import default_halo, default_tile_size
from fieldtruth.detectors.train import TrainConfig, train_detector
from fieldtruth.detectors.unet import UNet
from fieldtruth.imagery.synthetic import SyntheticScene

STATS = {"norm_mean": [1000.0, 900.0, 800.0, 700.0], "norm_std": [300.0, 250.0, 200.0, 150.0]}


def test_heatmap_has_the_input_size_for_any_shape() -> None:
    model = UNet(4, 2, width=8, **STATS).eval()
    out = model(torch.randn(1, 4, 37, 53))
    assert out.heatmap.shape == (1, 2, 37, 53) and out.size is None and model.output_stride == 1


def test_the_receptive_field_it_reports_covers_every_pixel_that_moves_an_output() -> None:
    torch.manual_seed(0)  # random weights and a reflectance-like input: no ReLU left dead by chance
    model = UNet(4, 1, width=8, **STATS).eval()
    x = (torch.rand(1, 4, 129, 129) * 2000).requires_grad_()
    model(x).heatmap[0, 0, 64, 64].backward()
    touched = (x.grad.abs().sum(dim=(0, 1)) > 0).nonzero()
    span = int((touched.max(dim=0).values - touched.min(dim=0).values).max()) + 1
    assert span <= model.receptive_field_px < 2 * span


def test_log_input_undoes_the_cards_normalisation() -> None:
    model = UNet(4, 1, width=8, **STATS).eval()
    raw = torch.full((1, 4, 16, 16), 1000.0)
    mean, std = (torch.tensor(STATS[k])[:, None, None] for k in ("norm_mean", "norm_std"))
    normalised = (raw - mean) / std
    seen = {}
    model.enc1.register_forward_pre_hook(lambda _, args: seen.setdefault("x", args[0]))
    model(normalised)
    assert torch.allclose(seen["x"], torch.log1p(torch.ones(1, 4, 16, 16)), atol=1e-5)


def test_log_input_without_statistics_is_refused_and_so_is_a_tiny_width() -> None:
    with pytest.raises(ValueError, match="norm_mean"):
        UNet(4, 1)
    with pytest.raises(ValueError, match="width"):
        UNet(4, 1, width=2, log_input=False)


def test_a_unet_bundle_round_trips_through_the_registry(tmp_path: Path) -> None:
    args = {"in_channels": 4, "num_classes": 1, "width": 8, **STATS}
    model = build_model("unet", args).eval()
    card = ModelCard(architecture="unet", architecture_args=args, bands=("blue", "green", "red", "nir"),
                     gsd_m=10.0, norm_mean=tuple(STATS["norm_mean"]), norm_std=tuple(STATS["norm_std"]),
                     classes=("vessel",), receptive_field_px=model.receptive_field_px)
    save_bundle(tmp_path / "unet.safetensors", model, card)
    loaded = load_bundle(tmp_path / "unet.safetensors")
    x = torch.randn(1, 4, 40, 40)
    with torch.inference_mode():
        eager, fast = model(x).heatmap, loaded.network(x).heatmap
    assert torch.allclose(torch.sigmoid(eager), torch.sigmoid(fast), atol=1e-5)


def test_the_candidate_preset_trains_a_unet_bundle_that_scans_with_512_px_cores(
    small_scene: SyntheticScene, tmp_path: Path,
) -> None:
    config = TrainConfig.from_mapping(
        {
            "steps": 6,
            "classes": ["brick_kiln", "fishing_camp"],
            "scene_offset": {},
            "chips": {"mine_at": []},
            "validation": {"tile": 192},
        },
        "vessels-unet",
    )
    bundle = train_detector([small_scene.path], tmp_path / "unet.safetensors", config)
    assert bundle.card.architecture == "unet" and bundle.card.receptive_field_px == 56
    assert default_halo(bundle) == 32 and default_tile_size(bundle) == 512
    assert output_stride(bundle.network) == 1
