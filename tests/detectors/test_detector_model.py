"""Architectures: output shapes, any band count, receptive field, tiles that see what the whole scene
sees, and the static registry (with the arguments of earlier versions)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from fieldtruth.detectors.bundle import ModelCard, load_bundle, save_bundle
from fieldtruth.detectors.errors import BundleError, UnknownArchitectureError
from fieldtruth.detectors.model import CentreNet, LayerSpec, receptive_field
from fieldtruth.detectors.predict import detect_scene, heatmap
from fieldtruth.detectors.registry import ARCHITECTURES, build_model

#: The vessels preset's network, narrow: NDWI channel, strided stem, quarter-resolution context, size head.
VESSEL_ARGS = {"in_channels": 4, "num_classes": 1, "width": 8, "dilations": [1, 2, 4], "size_head": True,
               "indices": [[1, 3]], "norm_mean": [900.0, 1100.0, 1200.0, 2500.0],
               "norm_std": [300.0, 300.0, 400.0, 900.0], "context_down": True, "fast_stem": True}


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


@pytest.mark.parametrize("args", [
    {"in_channels": 2, "num_classes": 1, "width": 8, "dilations": [1, 2]},
    {**VESSEL_ARGS, "in_channels": 4},
], ids=["plain", "vessels"])
def test_reported_receptive_field_matches_gradient_extent_of_each_variant(args: dict) -> None:
    torch.manual_seed(0)
    model = build_model("centrenet", args).eval()
    x = (torch.rand(1, args["in_channels"], 160, 160) * 2000 + 500).requires_grad_(True)
    model(x).heatmap[0, 0, 40, 40].backward()
    touched = torch.nonzero(x.grad.abs().sum(dim=(0, 1)) > 0)
    for axis in (0, 1):
        assert int(touched[:, axis].max() - touched[:, axis].min()) + 1 <= model.receptive_field_px


def test_tiles_with_half_the_receptive_field_as_halo_find_what_the_whole_scene_does(tmp_path: Path) -> None:
    torch.manual_seed(2)
    model = build_model("centrenet", VESSEL_ARGS).eval()
    card = ModelCard(
        architecture="centrenet", architecture_args=dict(VESSEL_ARGS), bands=("blue", "green", "red", "nir"),
        gsd_m=10.0, norm_mean=tuple(VESSEL_ARGS["norm_mean"]), norm_std=tuple(VESSEL_ARGS["norm_std"]),
        classes=("vessel",), threshold=0.0, min_distance_px=4, receptive_field_px=model.receptive_field_px,
    )
    save_bundle(tmp_path / "m.safetensors", model, card)
    loaded = load_bundle(tmp_path / "m.safetensors")
    rng = np.random.default_rng(3)
    raw = rng.uniform(300, 3000, size=(4, 96, 112)).astype(np.float32)
    valid = np.ones((96, 112), dtype=bool)
    nhwc = model.to(memory_format=torch.channels_last)  # as load_bundle runs it
    as_loaded = heatmap(dataclasses.replace(loaded, model=nhwc), raw, valid)
    assert torch.equal(heatmap(loaded, raw, valid), as_loaded)
    whole = detect_scene(loaded, raw, valid, tile=256, halo=0, threshold=0.0)
    tiled = detect_scene(loaded, raw, valid, tile=48, halo=model.receptive_field_px // 2 + 1, threshold=0.0)
    assert len(whole) == len(tiled) > 0
    for a, b in zip(whole, tiled, strict=True):
        assert abs(a.row - b.row) < 1e-3 and abs(a.col - b.col) < 1e-3 and abs(a.score - b.score) < 1e-4


def test_registry_is_one_static_table_and_refuses_unknown_names() -> None:
    assert set(ARCHITECTURES) == {"centrenet", "ensemble", "fcos", "baseline-ring", "baseline-vessel"}
    model = build_model("centrenet", {"in_channels": 3, "num_classes": 1, "width": 8, "dilations": [1, 2]})
    assert isinstance(model, CentreNet) and model.dilations == (1, 2)
    members = [{"architecture": "centrenet", "args": {"in_channels": 3, "num_classes": 1, "width": 8}}] * 2
    assert len(build_model("ensemble", {"in_channels": 3, "num_classes": 1, "members": members}).members) == 2
    with pytest.raises(UnknownArchitectureError, match="not registered"):
        build_model("resnet9000", {})
    with pytest.raises(UnknownArchitectureError, match="tried and not adopted, and removed"):
        build_model("unet", {"in_channels": 4, "num_classes": 1})
    with pytest.raises(ValueError, match="do not fit"):
        build_model("centrenet", {"nonsense": 1})
    with pytest.raises(ValueError, match="ensemble members must be"):
        build_model("ensemble", {"in_channels": 3, "num_classes": 1,
                                 "members": [{"architecture": "centrenet"}]})


def test_no_module_registers_an_architecture_on_import() -> None:
    """The table is written in the registry alone: no other module of the room touches it."""
    room = Path(__file__).resolve().parents[2] / "detectors"
    for module in sorted(room.glob("*.py")):
        if module.name != "registry.py":
            assert "ARCHITECTURES[" not in module.read_text(), module.name


def test_arguments_of_earlier_versions_load_when_off_and_are_refused_when_on(tmp_path: Path) -> None:
    args = {"in_channels": 4, "num_classes": 2, "width": 8, "dilations": [1]}
    torch.manual_seed(0)
    model = build_model("centrenet", args)
    assert isinstance(build_model("centrenet", {**args, "local_window": 0, "log_input": False}), CentreNet)
    card = ModelCard(architecture="centrenet", architecture_args={**args, "local_window": 0},
                     bands=("a", "b", "c", "d"), gsd_m=10.0, norm_mean=(0.0,) * 4, norm_std=(1.0,) * 4,
                     classes=("x", "y"))
    save_bundle(tmp_path / "old.safetensors", model, card)  # a card written with the removed option off
    assert load_bundle(tmp_path / "old.safetensors").card.architecture_args["local_window"] == 0
    for name, value in (("local_window", 15), ("log_input", True)):
        with pytest.raises(ValueError, match=f"no longer takes {name}={value!r}.*retrain"):
            build_model("centrenet", {**args, name: value})
    members = [{"architecture": "centrenet", "args": {**args, "local_window": 63}}]
    with pytest.raises(ValueError, match="no longer takes local_window=63"):
        build_model("ensemble", {"in_channels": 4, "num_classes": 2, "members": members})
    on = tmp_path / "on.safetensors"
    save_bundle(on, model, card)
    blob = on.read_bytes()
    on.write_bytes(blob.replace(b'local_window\\": 0', b'local_window\\": 9'))  # same length: a valid header
    assert on.read_bytes() != blob
    refused = r"on.safetensors.*no longer takes local_window=9.*Tried and rejected"
    with pytest.raises(BundleError, match=refused):
        load_bundle(on)
