"""What runs a detector: ONNX Runtime (the CPU default) gives PyTorch's detections; where it cannot run."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest
import torch

from fieldtruth.detectors import onnxrunner
from fieldtruth.detectors.bundle import LoadedBundle, load_bundle
from fieldtruth.detectors.device import resolve_engine
from fieldtruth.detectors.errors import DeviceError
from fieldtruth.detectors.onnxrunner import OnnxNetwork
from fieldtruth.detectors.predict import PixelDetection, detect_array, detect_arrays, heatmap
from fieldtruth.imagery.synthetic import SyntheticScene
from fieldtruth.ingest.scene import open_scene

#: Largest difference of a probability between ONNX Runtime and PyTorch (float32 kernels round differently).
ONNX_SCORE_TOLERANCE = 1e-5


def _low_threshold(bundle: LoadedBundle) -> LoadedBundle:
    """The bundle with a low threshold, so that a briefly trained model reports many sites."""
    return dataclasses.replace(bundle, card=dataclasses.replace(bundle.card, threshold=0.05))


def _chips(scene: SyntheticScene) -> list[tuple[np.ndarray, np.ndarray]]:
    """Chips of several shapes (square, cut short at the edges, odd sides), raw values."""
    data = open_scene(scene.path, hash_files=False).read(("blue", "green", "red", "nir"))
    cuts = [(0, 0, 128, 128), (128, 0, 256, 128), (256, 200, 384, 384), (5, 7, 384, 101)]
    return [(np.ascontiguousarray(data[:, r0:r1, c0:c1]), np.ones((r1 - r0, c1 - c0), dtype=bool))
            for r0, c0, r1, c1 in cuts]


def _same(a: list[PixelDetection], b: list[PixelDetection]) -> None:
    """The same sites, in the same order, at the same places, scores within the tolerance."""
    assert [d.label for d in a] == [d.label for d in b]
    for x, y in zip(a, b, strict=True):
        assert (x.row, x.col) == pytest.approx((y.row, y.col), abs=1e-3)
        assert x.score == pytest.approx(y.score, abs=ONNX_SCORE_TOLERANCE)


def test_onnx_runtime_is_the_default_on_a_cpu_and_finds_the_sites_pytorch_finds(
    trained: tuple[LoadedBundle, list[float]], small_scene: SyntheticScene,
) -> None:
    onnx = _low_threshold(load_bundle(trained[0].path))
    eager = _low_threshold(load_bundle(trained[0].path, engine="torch"))
    assert (onnx.engine, eager.engine) == ("onnx", "torch") and isinstance(onnx.network, OnnxNetwork)
    chips = _chips(small_scene)
    found = 0
    for data, valid in chips:
        a, b = heatmap(onnx, data, valid), heatmap(eager, data, valid)
        assert a.shape == b.shape and float((a - b).abs().max()) <= ONNX_SCORE_TOLERANCE
        in_onnx = detect_array(onnx, data, valid)
        _same(in_onnx, detect_array(eager, data, valid))
        found += len(in_onnx)
    assert found > 0
    for alone, together in zip([detect_array(onnx, *c) for c in chips], detect_arrays(onnx, chips, batch=3),
                               strict=True):
        _same(alone, together)  # the two 128 px chips pass as one batch of 2: batches of any size run


def test_loading_a_bundle_exports_nothing_until_it_runs(trained: tuple[LoadedBundle, list[float]]) -> None:
    bundle = load_bundle(trained[0].path)
    assert bundle.runner._session is None  # a bundle loaded for its card costs no export
    bundle.network(torch.zeros(1, len(bundle.card.bands), 40, 40))
    assert bundle.runner._session is not None


CPU, GPU = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(
    ("asked", "device", "precision", "architecture", "used"),
    [
        ("auto", CPU, "float32", "centrenet", "onnx"),
        ("auto", CPU, "float32", "ensemble", "onnx"),
        ("auto", GPU, "float32", "ensemble", "torch"),
        ("auto", CPU, "bfloat16", "centrenet", "torch"),
        ("auto", CPU, "float32", "fcos", "torch"),
        ("auto", CPU, "float32", "baseline-vessel", "torch"),
        ("torch", CPU, "float32", "centrenet", "torch"),
        ("onnx", CPU, "float32", "ensemble", "onnx"),
    ],
)
def test_auto_takes_onnx_runtime_wherever_it_can_run(
    asked: str, device: torch.device, precision: str, architecture: str, used: str,
) -> None:
    assert resolve_engine(asked, device, precision, architecture) == used


@pytest.mark.parametrize(
    ("device", "precision", "architecture", "reason"),
    [
        (GPU, "float32", "centrenet", "on the CPU only, not on cuda"),
        (CPU, "bfloat16", "centrenet", "in float32 only, not bfloat16"),
        (CPU, "float32", "fcos", "architecture 'fcos' is not run by ONNX Runtime"),
        (CPU, "float32", "baseline-ring", "architecture 'baseline-ring'"),
    ],
)
def test_onnx_where_it_cannot_run_is_refused_saying_why_and_the_fix(
    device: torch.device, precision: str, architecture: str, reason: str,
) -> None:
    with pytest.raises(DeviceError, match="--engine onnx: .*--engine torch") as error:
        resolve_engine("onnx", device, precision, architecture)
    assert reason in str(error.value)


def test_without_onnxruntime_auto_falls_back_to_torch_and_onnx_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails, as where it is not installed
    assert resolve_engine("auto", CPU, "float32", "centrenet") == "torch"
    with pytest.raises(DeviceError, match="onnxruntime is not installed"):
        resolve_engine("onnx", CPU, "float32", "centrenet")


@pytest.mark.parametrize("name", ["ONNX", "ort", ""])
def test_an_unknown_engine_is_refused(name: str) -> None:
    with pytest.raises(DeviceError, match="auto, torch, onnx"):
        resolve_engine(name, CPU, "float32", "centrenet")


def test_a_model_exported_elsewhere_is_run_without_exporting_again(
    trained: tuple[LoadedBundle, list[float]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A scan's client exports once and hands the model to its workers."""
    client, worker = load_bundle(trained[0].path), load_bundle(trained[0].path)
    model = client.runner.exported()

    def no_export(*args: object) -> bytes:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnxrunner, "_export", no_export)
    worker.runner.adopt(model)
    x = torch.rand(1, len(client.card.bands), 48, 72)
    assert torch.equal(worker.network(x).heatmap, client.network(x).heatmap)
