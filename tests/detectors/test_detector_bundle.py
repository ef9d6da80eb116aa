"""Bundles: round trip, integrity checks, and refusal of anything that is not a fieldtruth bundle."""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from fieldtruth.detectors.bundle import ModelCard, load_bundle, save_bundle
from fieldtruth.detectors.errors import BundleError
from fieldtruth.detectors.metrics import CardMetrics, Figures
from fieldtruth.detectors.predict import detect_array, heatmap
from fieldtruth.detectors.registry import build_model

ARGS = {"in_channels": 4, "num_classes": 2, "width": 8, "dilations": [1, 2]}
FIGURES = Figures(precision=0.9, recall=0.75, f1=0.8182, ap=0.7, tp=9, fp=1, fn=3, n_labels=12)


def card(**changes: object) -> ModelCard:
    base = ModelCard(
        created="2026-01-02T03:04:05+00:00",  # fixed, so two cards made a second apart compare equal
        architecture="centrenet",
        architecture_args=dict(ARGS),
        bands=("blue", "green", "red", "nir"),
        gsd_m=10.0,
        norm_mean=(900.0, 1100.0, 1200.0, 2500.0),
        norm_std=(300.0, 300.0, 400.0, 900.0),
        classes=("brick_kiln", "fishing_camp"),
        threshold=0.3,
        receptive_field_px=29,
        metrics=CardMetrics(
            scenes=("b",),
            threshold=0.3,
            overall=FIGURES,
            per_class={"brick_kiln": FIGURES},
            tolerance_px=1.0,
            measured_on_held_out=True,
            validations=((100, 0.5),),
        ),
        split={"train": ["a"], "validation": ["b"]},
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


#: ``metrics`` as a trained card of an earlier version wrote them (figures under ``overall``, with the AP as
#: ``average_precision`` and the match ``tolerance``).
EARLIER_METRICS = {
    "scenes": ["durban"],
    "threshold": 0.2211,
    "average_precision": 0.7412,
    "train_seconds": 130.2,
    "overall": {
        "tp": 40,
        "fp": 12,
        "fn": 15,
        "n_labels": 55,
        "precision": 0.7692,
        "recall": 0.7273,
        "f1": 0.7477,
        "average_precision": 0.6601,
        "tolerance": 1.0,
    },
    "per_class": {
        "vessel": {
            "tp": 40,
            "fp": 12,
            "fn": 15,
            "n_labels": 55,
            "precision": 0.7692,
            "recall": 0.7273,
            "f1": 0.7477,
            "average_precision": 0.6601,
            "tolerance": 1.0,
        }
    },
    "suppression_tried": [[4, 0.5, 0.71], [6, 1.0, 0.7477]],
    "steps_run": 700,
    "final_loss": 0.8123,
    "measured_on_held_out": True,
    "kept_step": 525,
    "stopped_early": False,
    "validations": [[175, 0.61], [350, 0.74]],
    "note": "figures measured on the validation scenes the threshold was chosen on",
}


def test_metrics_of_earlier_cards_parse_once_into_typed_figures_and_write_back_the_same() -> None:
    data = {**card().to_dict(), "metrics": EARLIER_METRICS}
    parsed = ModelCard.from_dict(data).metrics
    assert parsed.overall == Figures(
        precision=0.7692, recall=0.7273, f1=0.7477, ap=0.6601, tp=40, fp=12, fn=15, n_labels=55
    )
    assert parsed.per_class["vessel"] == parsed.overall and parsed.tolerance_px == 1.0
    assert parsed.suppression_tried == ((4, 0.5, 0.71), (6, 1.0, 0.7477))
    assert parsed.validations[1] == (350, 0.74)
    assert parsed.average_precision == 0.7412 and parsed.kept_step == 525 and parsed.stopped_early is False
    assert parsed.to_dict() == EARLIER_METRICS
    later = ModelCard.from_dict({**data, "metrics": {**EARLIER_METRICS, "calibration": [0.1]}}).metrics
    assert later == parsed  # a later version's key is ignored, not a reason to refuse the bundle


@pytest.mark.parametrize(
    ("metrics", "says"),
    [
        ({"overall": {"precision": 0.9}}, "metrics.overall.recall: Field required"),
        ({**EARLIER_METRICS, "steps_run": "many"}, "metrics.steps_run: Input should be a valid integer"),
        ({"suppression_tried": [[4, 0.5]]}, "metrics.suppression_tried.0.2: Field required"),
        ({"per_class": []}, "metrics.per_class: Input should be a valid dictionary"),
    ],
)
def test_malformed_metrics_are_refused_naming_the_field(metrics: dict, says: str) -> None:
    with pytest.raises(BundleError, match=f"bundle 'x'.*{re.escape(says)}"):
        ModelCard.from_dict({**card().to_dict(), "metrics": metrics}, source="bundle 'x'")


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
        save_bundle(
            tmp_path / "y.safetensors",
            model,
            card(bands=("red", "nir"), norm_mean=(1.0, 1.0), norm_std=(1.0, 1.0)),
        )
