"""Peak extraction and detect_array: thresholds, suppression, invalid pixels, input checks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fieldtruth.detectors.bundle import LoadedBundle, ModelCard
from fieldtruth.detectors.errors import InputMismatchError
from fieldtruth.detectors.model import Heads
from fieldtruth.detectors.peaks import extract_peaks
from fieldtruth.detectors.predict import detect_array, detect_scene, detect_scene_each


def gaussian(h: int, w: int, row: float, col: float, sigma: float, peak: float) -> torch.Tensor:
    r = torch.arange(h, dtype=torch.float32)[:, None]
    c = torch.arange(w, dtype=torch.float32)[None, :]
    return peak * torch.exp(-((r - row) ** 2 + (c - col) ** 2) / (2 * sigma**2))


def test_peaks_found_with_subcell_position_and_class() -> None:
    heat = torch.zeros(2, 40, 40)
    heat[0] = gaussian(40, 40, 10.3, 20.0, 1.2, 0.9)
    heat[1] = gaussian(40, 40, 30.0, 5.6, 1.2, 0.6)
    peaks = extract_peaks(heat, threshold=0.3, min_distance=2)
    assert [p.channel for p in peaks] == [0, 1]
    assert peaks[0].score == pytest.approx(0.9, abs=0.05)
    assert peaks[0].row == pytest.approx(10.3, abs=0.25) and peaks[0].col == pytest.approx(20.0, abs=0.1)
    assert peaks[1].row == pytest.approx(30.0, abs=0.1) and peaks[1].col == pytest.approx(5.6, abs=0.25)


def test_threshold_and_min_distance_suppress() -> None:
    heat = (gaussian(30, 30, 10, 10, 1.0, 0.8) + gaussian(30, 30, 10, 13, 1.0, 0.7))[None]
    assert len(extract_peaks(heat, threshold=0.1, min_distance=1)) == 2
    merged = extract_peaks(heat, threshold=0.1, min_distance=4)
    assert len(merged) == 1 and merged[0].col < 11
    assert extract_peaks(heat, threshold=0.95, min_distance=1) == []


class SpotModel(nn.Module):
    """Heatmap logits = 20 * (band 0 - 0.5), averaged to half resolution: a bright spot is a site."""

    output_stride = 2

    def forward(self, x: torch.Tensor) -> Heads:
        return Heads(F.avg_pool2d(20 * (x[:, :1] - 0.5), 2, ceil_mode=True), None)


def spot_bundle() -> LoadedBundle:
    card = ModelCard(
        architecture="test", architecture_args={}, bands=("a", "b"), gsd_m=10, norm_mean=(0.0, 0.0),
        norm_std=(1.0, 1.0), classes=("spot",), threshold=0.5, min_distance_px=4,
    )
    return LoadedBundle(model=SpotModel().eval(), card=card, sha256="", path=Path("test"))


def test_detect_array_reports_spots_in_pixel_coordinates() -> None:
    data = np.zeros((2, 50, 60), dtype=np.float32)
    data[0, 20:22, 30:32] = 1.0
    found = detect_array(spot_bundle(), data, np.ones((50, 60), dtype=bool))
    assert len(found) == 1
    assert found[0].label == "spot" and found[0].score > 0.99
    assert found[0].row == pytest.approx(21.0, abs=0.5) and found[0].col == pytest.approx(31.0, abs=0.5)


def test_no_detection_on_invalid_pixels_and_no_nan_leak() -> None:
    data = np.zeros((2, 50, 60), dtype=np.float32)
    data[0, 20:22, 30:32] = 1.0
    data[0, 40:42, 10:12] = 1.0
    valid = np.ones((50, 60), dtype=bool)
    valid[19:23, 29:33] = False
    data[:, ~valid] = np.nan
    found = detect_array(spot_bundle(), data, valid)
    assert [(round(d.row), round(d.col)) for d in found] == [(41, 11)]
    assert detect_array(spot_bundle(), data, np.zeros_like(valid)) == []


def test_wrong_band_count_or_mask_shape_is_refused() -> None:
    with pytest.raises(InputMismatchError, match="expects 2 band"):
        detect_array(spot_bundle(), np.zeros((3, 20, 20), np.float32), np.ones((20, 20), bool))
    with pytest.raises(InputMismatchError, match="validity mask"):
        detect_array(spot_bundle(), np.zeros((2, 20, 20), np.float32), np.ones((20, 21), bool))


def test_detect_scene_keeps_each_spot_once_across_tiles() -> None:
    data = np.zeros((2, 100, 100), dtype=np.float32)
    for r, c in [(10, 10), (48, 50), (50, 70), (90, 30)]:
        data[0, r : r + 2, c : c + 2] = 1.0
    found = detect_scene(spot_bundle(), data, np.ones((100, 100), bool), tile=32, halo=8)
    assert sorted((round(d.row), round(d.col)) for d in found) == [(11, 11), (49, 51), (51, 71), (91, 31)]


def test_several_cards_share_one_forward_pass_and_decode_as_each_alone() -> None:
    data = np.zeros((2, 64, 64), dtype=np.float32)
    for r, c, value in [(10, 10, 1.0), (10, 16, 0.7), (40, 50, 1.0)]:  # the first two 6 px apart, one weaker
        data[0, r : r + 2, c : c + 2] = value
    bundle = spot_bundle()
    cards = [
        dataclasses.replace(bundle.card, min_distance_px=2),
        dataclasses.replace(bundle.card, min_distance_px=12),
    ]
    calls = []
    bundle.model.register_forward_hook(lambda *_: calls.append(1))
    each = detect_scene_each(bundle, cards, data, np.ones((64, 64), bool), tile=32, halo=8)
    assert len(calls) == 4  # one pass per tile, not one per card
    alone = [
        detect_scene(dataclasses.replace(bundle, card=card), data, np.ones((64, 64), bool), tile=32, halo=8)
        for card in cards
    ]
    assert each == alone
    assert len(each[0]) == 3 and len(each[1]) == 2
