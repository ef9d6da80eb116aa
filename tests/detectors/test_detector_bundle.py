"""Bundles: round trip, integrity checks, and refusal of anything that is not a fieldtruth bundle."""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from fieldtruth.detectors.bundle import ModelCard, load_bundle, save_bundle
from fieldtruth.detectors.errors import BundleError
from fieldtruth.detectors.model import build_model
from fieldtruth.detectors.predict import detect_array, heatmap

ARGS = {"in_channels": 4, "num_classes": 2, "width": 8, "dilations": [1, 2]}


def card(**changes: object) -> ModelCard:
    base = ModelCard(
        created="2026-01-02T03:04:05+00:00",  # fixed, so two cards made a second apart compare equal
        architecture="centrenet", architecture_args=dict(ARGS), bands=("blue", "green", "red", "nir"), gsd_m=10.0,
        norm_mean=(900.0, 1100.0, 1200.0, 2500.0), norm_std=(300.0, 300.0, 400.0, 900.0),
        classes=("brick_kiln", "fishing_camp"), threshold=0.3, receptive_field_px=29,
        metrics={"precision": 0.9}, split={"train": ["a"], "validation": ["b"]},
        training_data=({"id": "a", "sha256": "0" * 64},),
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, torch.nn.Module, str]:
    torch.manual_seed(1)
    model = build_model("centrenet", ARGS).eval()
    path = tmp_path / "model.safetensors"
    return path, model, save_bundle(path, model, card())


def test_round_trip_gives_same_outputs_card_and_sha(saved: tuple[Path, torch.nn.Module, str]) -> None:
    path, model, digest = saved
    loaded = load_bundle(path)
    assert digest == loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert dataclasses.replace(loaded.card, weights_sha256="") == card()
    assert len(loaded.card.weights_sha256) == 64
    assert not loaded.model.training
    data = np.random.default_rng(0).uniform(200, 4000, size=(4, 40, 52)).astype(np.float32)
    valid = np.ones((40, 52), dtype=bool)
    as_trained = heatmap(dataclasses.replace(loaded, model=model), data, valid)
    after = heatmap(loaded, data, valid)
    # Loaded models run NHWC (faster convolutions): the same weights, outputs equal to float rounding.
    assert loaded.model.stem[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(as_trained, after, atol=1e-5)
    model.to(memory_format=torch.channels_last)
    before = heatmap(dataclasses.replace(loaded, model=model), data, valid)
    assert torch.equal(before, after)
    assert detect_array(loaded, data, valid, threshold=0.0) == detect_array(
        dataclasses.replace(loaded, model=model), data, valid, threshold=0.0
    )


def test_card_json_round_trip() -> None:
    c = card()
    assert ModelCard.from_json(c.to_json()) == c


def test_flipped_weight_byte_fails_the_checksum(saved: tuple[Path, torch.nn.Module, str]) -> None:
    path, _, _ = saved
    blob = bytearray(path.read_bytes())
    blob[-5] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(BundleError, match="does not match") as info:
        load_bundle(path)
    assert str(path) in str(info.value)


def test_flipped_header_byte_is_refused(saved: tuple[Path, torch.nn.Module, str]) -> None:
    path, _, _ = saved
    blob = bytearray(path.read_bytes())
    blob[9] ^= 0xFF  # inside the JSON header
    path.write_bytes(bytes(blob))
    with pytest.raises(BundleError, match=str(path.name)):
        load_bundle(path)


@pytest.mark.parametrize("keep", [0, 7, 200, -10])
def test_truncated_bundle_is_refused(saved: tuple[Path, torch.nn.Module, str], keep: int) -> None:
    path, _, _ = saved
    blob = path.read_bytes()
    path.write_bytes(blob[:keep] if keep >= 0 else blob[:keep])
    with pytest.raises(BundleError, match=str(path.name)):
        load_bundle(path)


class _Payload:
    """Unpickling this would create a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def test_pickle_payload_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(BundleError, match="not a fieldtruth bundle") as info:
        load_bundle(path)
    assert str(path) in str(info.value)
    assert not marker.exists()
    # the same payload inside a torch.save archive is refused too
    torch_path = tmp_path / "evil.pt"
    torch.save({"x": _Payload(marker)}, torch_path)
    with pytest.raises(BundleError):
        load_bundle(torch_path)
    assert not marker.exists()


def test_plain_safetensors_without_card_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(3)}, str(path))
    with pytest.raises(BundleError, match="without a fieldtruth model card"):
        load_bundle(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="nope.safetensors"):
        load_bundle(tmp_path / "nope.safetensors")


def test_weights_that_do_not_fit_the_card_are_refused(tmp_path: Path) -> None:
    model = build_model("centrenet", ARGS)
    with pytest.raises(BundleError, match="do not fit"):
        save_bundle(tmp_path / "x.safetensors", model, card(architecture_args={**ARGS, "width": 16}))
    with pytest.raises(BundleError, match="reads 4 band"):
        save_bundle(tmp_path / "y.safetensors", model, card(bands=("red", "nir"), norm_mean=(1.0, 1.0), norm_std=(1.0, 1.0)))
