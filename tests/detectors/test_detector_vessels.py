"""The vessel baseline (NDWI + local contrast), the vessel model options, and the FCOS architecture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fieldtruth.detectors.baseline import vessel_baseline_card
from fieldtruth.detectors.bundle import LoadedBundle, load_bundle, save_bundle
from fieldtruth.detectors.filters import VesselBaseline
from fieldtruth.detectors.predict import detect_array
from fieldtruth.detectors.registry import build_model


def sea_with_ships() -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Dark water (NDWI > 0) on the left, bright land on the right, three bright ships at sea, a bright
    quay."""
    rng = np.random.default_rng(0)
    data = np.empty((4, 120, 160), dtype=np.float32)
    data[:] = np.array([600, 700, 400, 300], dtype=np.float32)[:, None, None]  # water: green > nir
    data[:, :, 100:] = np.array([900, 1100, 1300, 2600], dtype=np.float32)[:, None, None]  # land
    data += rng.normal(0, 15, data.shape).astype(np.float32)
    ships = [(30, 30), (60, 60), (90, 40)]
    for r, c in ships:
        data[:, r - 2 : r + 3, c - 1 : c + 2] = np.array([1500, 1600, 1700, 2500], dtype=np.float32)[
            :, None, None
        ]
    data[:, 50:55, 120:123] = 4000  # a bright building on land
    return data, ships


def test_vessel_baseline_finds_ships_at_sea_not_on_land(tmp_path: Path) -> None:
    path = tmp_path / "vb.safetensors"
    save_bundle(path, VesselBaseline(), vessel_baseline_card(threshold=0.5))
    bundle = load_bundle(path)
    data, ships = sea_with_ships()
    found = detect_array(bundle, data, np.ones(data.shape[1:], bool))
    got = sorted((round(d.row), round(d.col)) for d in found)
    assert len(got) == 3
    for (r, c), (gr, gc) in zip(sorted(ships), got, strict=True):
        assert abs(r - gr) <= 1 and abs(c - gc) <= 1


def test_ndwi_input_and_size_suppression_keep_one_detection_per_ship() -> None:
    args = {
        "in_channels": 4,
        "num_classes": 1,
        "width": 8,
        "dilations": [1, 2],
        "size_head": True,
        "indices": [[1, 3]],
        "norm_mean": [1.0] * 4,
        "norm_std": [1.0] * 4,
        "context_down": True,
        "fast_stem": True,
    }
    model = build_model("centrenet", args).eval()
    out = model(torch.randn(2, 4, 37, 50))
    assert out.heatmap.shape == (2, 1, 19, 25) and out.size.shape == (2, 2, 19, 25)
    from fieldtruth.detectors.peaks import find_peaks, suppress_inside_boxes

    heat = torch.zeros(1, 1, 20, 20)
    for row, col, score in ((10, 10, 0.9), (11, 12, 0.8), (16, 10, 0.7)):
        heat[0, 0, row, col] = score
    sizes = torch.full((1, 2, 20, 20), 12.0)  # 12 px boxes at stride 2: a peak 2 cells away is the same ship
    peaks = find_peaks(heat, threshold=0.5, min_distance=1, sizes=sizes)[0]
    assert [(p.row, p.col) for p in peaks] == [(10, 10), (11, 12), (16, 10)]
    assert suppress_inside_boxes(peaks, 2) == [peaks[0], peaks[2]]
    assert suppress_inside_boxes(peaks, 2, shrink=0.1) == peaks  # smaller boxes: three ships


@pytest.mark.slow
def test_fcos_any_band_count_trains_detects_and_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("fcos", {"in_channels": 5, "num_classes": 1})
    x = torch.randn(2, 5, 64, 64)
    loss = model.loss(
        x,
        [torch.tensor([[10.0, 10.0, 20.0, 16.0]]), torch.zeros(0, 4)],
        [torch.tensor([0]), torch.zeros(0, dtype=torch.long)],
    )
    assert torch.isfinite(loss)
    loss.backward()
    card = vessel_baseline_card()
    import dataclasses

    card = dataclasses.replace(
        card,
        architecture="fcos",
        architecture_args={"in_channels": 5, "num_classes": 1},
        bands=("a", "b", "c", "d", "e"),
        norm_mean=(0.0,) * 5,
        norm_std=(1.0,) * 5,
        name="fcos",
    )
    path = tmp_path / "fcos.safetensors"
    save_bundle(path, model, card)
    bundle = load_bundle(path)
    assert isinstance(bundle, LoadedBundle)
    found = detect_array(
        bundle,
        np.random.default_rng(0).normal(size=(5, 48, 48)).astype(np.float32),
        np.ones((48, 48), bool),
        threshold=0.0,
    )
    assert all(0 <= d.row < 48 and 0 <= d.col < 48 and d.label == "vessel" for d in found)
