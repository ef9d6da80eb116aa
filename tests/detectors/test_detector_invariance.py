"""The radiometrically invariant input layer (``local_window``): gain invariance, receptive field, bundles."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from fieldtruth.detectors.bundle import ModelCard, load_bundle, save_bundle
from fieldtruth.detectors.model import CentreNet, LocalContrast, box_mean, build_model
from fieldtruth.detectors.predict import detect_scene, heatmap

MEAN, STD = (900.0, 1100.0, 1200.0, 2500.0), (300.0, 300.0, 400.0, 900.0)
ARGS = {"in_channels": 4, "num_classes": 1, "width": 8, "dilations": [1, 2], "size_head": True,
        "local_window": 15, "norm_mean": list(MEAN), "norm_std": list(STD)}


def scene(seed: int = 0, h: int = 96, w: int = 112) -> np.ndarray:
    """Raw reflectance: water on the left, land on the right, a few bright ships, noise."""
    rng = np.random.default_rng(seed)
    data = np.empty((4, h, w), dtype=np.float32)
    data[:] = np.array([600, 700, 400, 300], dtype=np.float32)[:, None, None]
    data[:, :, w // 2 :] = np.array([900, 1100, 1300, 2600], dtype=np.float32)[:, None, None]
    data *= rng.uniform(0.9, 1.1, size=(1, h, w)).astype(np.float32)
    for r, c in [(20, 20), (50, 30), (70, 12)]:
        data[:, r - 2 : r + 3, c - 1 : c + 2] = np.array([1500, 1600, 1700, 2500], dtype=np.float32)[:, None, None]
    return data


def standardise(raw: np.ndarray) -> torch.Tensor:
    x = (raw - np.array(MEAN, np.float32)[:, None, None]) / np.array(STD, np.float32)[:, None, None]
    return torch.from_numpy(x)[None]


def test_box_mean_is_the_mean_of_the_box_cut_at_the_edges() -> None:
    x = torch.arange(7 * 9, dtype=torch.float32).reshape(1, 1, 7, 9) ** 1.5
    got = box_mean(x, 5)
    for r, c in [(0, 0), (3, 4), (6, 8), (2, 7)]:
        want = x[0, 0, max(r - 2, 0) : r + 3, max(c - 2, 0) : c + 3].mean()
        assert torch.isclose(got[0, 0, r, c], want, rtol=1e-5)


def test_output_unchanged_when_bands_get_a_constant_gain() -> None:
    torch.manual_seed(0)
    model = build_model("centrenet", ARGS).eval()
    raw = scene()
    gains = np.array([2.5, 0.6, 1.7, 0.35], dtype=np.float32)[:, None, None]  # an offset per band in log space
    with torch.no_grad():
        before, after = model(standardise(raw)), model(standardise(raw * gains))
    assert torch.allclose(before.heatmap, after.heatmap, atol=1e-4)
    assert torch.allclose(before.size, after.size, atol=1e-4)
    # the standardised bands themselves are far apart: without the layer the output moves
    plain = build_model("centrenet", {k: v for k, v in ARGS.items() if k != "local_window"}).eval()
    with torch.no_grad():
        assert not torch.allclose(plain(standardise(raw)).heatmap, plain(standardise(raw * gains)).heatmap, atol=1e-2)


def test_layer_features_are_gain_invariant_and_local() -> None:
    layer = LocalContrast(9)
    raw = torch.from_numpy(scene(1))[None]
    features = layer(raw)
    assert features.shape == (1, 8, 96, 112)
    assert torch.allclose(features, layer(raw * 3.0), atol=1e-4)
    # a pixel's features depend only on its 9 x 9 box: changing far pixels leaves it alone (up to rounding)
    changed = raw.clone()
    changed[..., 60:, 60:] *= 5.0
    assert torch.allclose(layer(changed)[..., :40, :40], features[..., :40, :40], atol=1e-4)


@pytest.mark.parametrize("window", [15, 31])
def test_receptive_field_includes_the_window(window: int) -> None:
    torch.manual_seed(0)
    model = CentreNet(in_channels=2, num_classes=1, width=8, dilations=(1, 2), local_window=window,
                      norm_mean=(500.0, 500.0), norm_std=(100.0, 100.0)).eval()
    assert model.receptive_field_px == CentreNet(in_channels=2, num_classes=1, width=8, dilations=(1, 2)).receptive_field_px + window - 1
    x = (torch.rand(1, 2, 160, 160) * 5 + 1).requires_grad_(True)
    model(x).heatmap[0, 0, 40, 40].backward()
    grad = x.grad.abs().sum(dim=(0, 1))
    touched = torch.nonzero(grad > 1e-9 * grad.max())  # running sums leave rounding residues far away
    assert int(touched[:, 0].max() - touched[:, 0].min()) + 1 == model.receptive_field_px
    assert int(touched[:, 1].max() - touched[:, 1].min()) + 1 == model.receptive_field_px


def test_bad_windows_and_missing_statistics_are_refused() -> None:
    with pytest.raises(ValueError, match="odd"):
        CentreNet(local_window=16, norm_mean=(1.0,) * 4, norm_std=(1.0,) * 4)
    with pytest.raises(ValueError, match="norm_mean"):
        CentreNet(local_window=15)
    assert CentreNet().local is None  # off by default: existing bundles and the demo are unchanged


def test_bundle_round_trip_and_tiles_match_the_whole_scene(tmp_path: Path) -> None:
    torch.manual_seed(2)
    model = build_model("centrenet", ARGS).eval()
    card = ModelCard(
        architecture="centrenet", architecture_args=dict(ARGS), bands=("blue", "green", "red", "nir"), gsd_m=10.0,
        norm_mean=MEAN, norm_std=STD, classes=("vessel",), threshold=0.0, min_distance_px=4,
        receptive_field_px=model.receptive_field_px,
    )
    save_bundle(tmp_path / "m.safetensors", model, card)
    loaded = load_bundle(tmp_path / "m.safetensors")
    assert loaded.card.architecture_args["local_window"] == 15 and loaded.model.local.window == 15
    raw, valid = scene(3), np.ones((96, 112), dtype=bool)
    nhwc = model.to(memory_format=torch.channels_last)  # as load_bundle runs it
    assert torch.equal(heatmap(loaded, raw, valid), heatmap(dataclasses.replace(loaded, model=nhwc), raw, valid))
    # tiles with a halo of half the receptive field give the whole-scene detections
    whole = detect_scene(loaded, raw, valid, tile=256, halo=0, threshold=0.0)
    tiled = detect_scene(loaded, raw, valid, tile=48, halo=model.receptive_field_px // 2 + 1, threshold=0.0)
    assert len(whole) == len(tiled)
    for a, b in zip(whole, tiled, strict=True):
        assert abs(a.row - b.row) < 1e-3 and abs(a.col - b.col) < 1e-3 and abs(a.score - b.score) < 1e-4


def test_haze_augmentation_adds_a_positive_offset_and_is_off_by_default() -> None:
    from torchvision import tv_tensors

    from fieldtruth.detectors.data import RandomGain

    image = tv_tensors.Image(torch.from_numpy(scene(4)))
    torch.manual_seed(0)
    plain = RandomGain(1.0, 1.0, 0.0)
    assert set(plain.make_params([image])) == {"gain"}  # no extra draw: the demo's random stream is unchanged
    assert torch.equal(plain(image), image)
    torch.manual_seed(0)
    hazy = RandomGain(1.0, 1.0, 0.0, haze=1.0)(image)
    offset = (hazy - image).as_subclass(torch.Tensor)
    per_band = offset.amax(dim=(-2, -1))
    assert torch.all(per_band >= 0) and torch.allclose(offset.amin(dim=(-2, -1)), per_band)  # a constant per band
    means = image.as_subclass(torch.Tensor).mean(dim=(-2, -1))
    assert torch.all(per_band <= means * 1.0001) and per_band.sum() > 0
