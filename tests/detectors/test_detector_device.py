"""Where a detector runs: cpu, cuda or auto; batches of tiles; the GPU gives the CPU's detections."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fieldtruth.detectors.bundle import LoadedBundle, load_bundle
from fieldtruth.detectors.device import device_memory, device_of, resolve_device
from fieldtruth.detectors.errors import DeviceError
from fieldtruth.detectors.predict import PixelDetection, detect_array, detect_arrays
from fieldtruth.imagery.synthetic import SyntheticScene
from fieldtruth.ingest.scene import open_scene

#: Largest difference of a score between the CPU and the GPU (float32 kernels differ in rounding).
GPU_SCORE_TOLERANCE = 1e-3


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.usefixtures("no_cuda")
def test_cuda_without_cuda_is_refused_naming_the_fix() -> None:
    with pytest.raises(DeviceError, match=r"--device cuda: no CUDA device .*--device cpu"):
        resolve_device("cuda")


@pytest.mark.usefixtures("no_cuda")
def test_auto_without_cuda_falls_back_to_the_cpu_and_says_so() -> None:
    device, note = resolve_device("auto")
    assert device.type == "cpu" and note == "device auto: no CUDA device here, running on the CPU"
    assert resolve_device("cpu") == (torch.device("cpu"), None)


def test_device_memory_is_the_gpus_total_and_none_for_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = []

    def properties(device: torch.device) -> object:
        asked.append(device)
        return dataclasses.make_dataclass("Properties", ["total_memory"])(8 << 30)

    monkeypatch.setattr(torch.cuda, "get_device_properties", properties)
    assert device_memory(torch.device("cpu")) is None and not asked
    assert device_memory(torch.device("cuda")) == 8 << 30 and asked == [torch.device("cuda")]


@pytest.mark.parametrize("name", ["gpu", "CUDA", ""])
def test_an_unknown_device_is_refused(name: str) -> None:
    with pytest.raises(DeviceError, match="auto, cpu, cuda"):
        resolve_device(name)


def _chips(scene: SyntheticScene, side: int = 128) -> list[tuple[np.ndarray, np.ndarray]]:
    """Tiles of the scene (raw values), one cut short at the edge so that shapes differ."""
    data = open_scene(scene.path, hash_files=False).read(("blue", "green", "red", "nir"))
    cuts = [(0, 0), (0, side), (side, 0), (side, side), (side * 2, side * 2 + 64)]
    chips = [(np.ascontiguousarray(data[:, r:r + side, c:c + side])) for r, c in cuts]
    return [(chip, np.ones(chip.shape[1:], dtype=bool)) for chip in chips]


def test_tiles_in_batches_give_the_detections_of_tiles_one_by_one(
    trained: tuple[LoadedBundle, list[float]], small_scene: SyntheticScene,
) -> None:
    bundle = _eager(load_bundle(trained[0].path))
    chips = _chips(small_scene)
    chips.append((chips[0][0], np.zeros_like(chips[0][1])))  # no valid pixel: nothing, and no model pass
    one_by_one = [detect_array(bundle, data, valid) for data, valid in chips]
    batched = detect_arrays(bundle, chips, batch=3)
    assert sum(map(len, one_by_one)) > 0 and batched[-1] == []
    for alone, together in zip(one_by_one, batched, strict=True):
        assert len(alone) == len(together)
        for a, b in zip(alone, together, strict=True):
            assert (a.label, a.row, a.col) == pytest.approx((b.label, b.row, b.col), abs=1e-3)
            assert a.score == pytest.approx(b.score, abs=1e-5)


def _eager(bundle: LoadedBundle) -> LoadedBundle:
    """The bundle with a low threshold, so that a briefly trained model reports many sites."""
    return dataclasses.replace(bundle, card=dataclasses.replace(bundle.card, threshold=0.05))


def _same_sites(a: list[PixelDetection], b: list[PixelDetection], threshold: float, tolerance: float) -> None:
    """Every site clearly above the threshold in one list is in the other, at the same place and score."""
    for one, other in ((a, b), (b, a)):
        for d in (d for d in one if d.score >= threshold + tolerance):
            near = [e for e in other if abs(e.row - d.row) < 0.05 and abs(e.col - d.col) < 0.05
                    and e.label == d.label]
            assert near and abs(near[0].score - d.score) <= tolerance, d


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="needs a CUDA device; the CPU fallback is tested above")
def test_on_the_gpu_the_same_sites_are_found_as_on_the_cpu(
    trained: tuple[LoadedBundle, list[float]], small_scene: SyntheticScene,
) -> None:
    cpu, gpu = _eager(load_bundle(trained[0].path)), _eager(load_bundle(trained[0].path, device="cuda"))
    assert device_of(gpu.network).type == "cuda" and device_of(gpu.model).type == "cpu"
    chips = _chips(small_scene)
    on_cpu = [detect_array(cpu, data, valid) for data, valid in chips]
    on_gpu = detect_arrays(gpu, chips, batch=4)
    assert sum(map(len, on_cpu)) > 0
    for a, b in zip(on_cpu, on_gpu, strict=True):
        _same_sites(a, b, 0.05, GPU_SCORE_TOLERANCE)


#: Largest difference of a score between float32 and bfloat16 inference (the stated tolerance).
BF16_SCORE_TOLERANCE = 0.01
#: Largest shift of a site's position (pixels) between the two.
BF16_POSITION_TOLERANCE = 0.1


def test_bfloat16_finds_the_sites_of_float32_within_the_stated_tolerance(
    trained: tuple[LoadedBundle, list[float]], small_scene: SyntheticScene,
) -> None:
    """bfloat16 runs on any CPU (emulated where it has no bfloat16 instructions, only slower): every site
    clearly above the threshold in one precision is found by the other, its score within 0.01."""
    full = _eager(load_bundle(trained[0].path))
    reduced = _eager(load_bundle(trained[0].path, precision="bfloat16"))
    assert reduced.precision == "bfloat16" and full.precision == "float32"
    chips = _chips(small_scene)
    found = [(detect_array(full, data, valid), detect_array(reduced, data, valid)) for data, valid in chips]
    assert sum(len(a) for a, _ in found) > 0
    for a, b in found:
        for one, other in ((a, b), (b, a)):
            for d in (d for d in one if d.score >= 0.05 + BF16_SCORE_TOLERANCE):
                near = [
                    e
                    for e in other
                    if e.label == d.label
                    and abs(e.row - d.row) <= BF16_POSITION_TOLERANCE
                    and abs(e.col - d.col) <= BF16_POSITION_TOLERANCE
                ]
                assert near and abs(near[0].score - d.score) <= BF16_SCORE_TOLERANCE, d
    assert any(abs(x.score - y.score) > 0 for a, b in found for x, y in zip(a, b, strict=False))  # it did run
    # bfloat16 for training never: the saved network runs in float32 whatever the runner does
    assert reduced.model.training is False and next(reduced.model.parameters()).dtype == torch.float32


@pytest.mark.parametrize(
    ("native", "device", "asked", "used"),
    [
        (True, "cpu", "auto", "bfloat16"),
        (False, "cpu", "auto", "float32"),
        (True, "cuda", "auto", "float32"),  # not measured on GPUs: float32 there
        (False, "cpu", "bfloat16", "bfloat16"),  # asked for: emulated, slower, but what was asked
        (True, "cpu", "float32", "float32"),
    ],
)
def test_precision_auto_takes_bfloat16_only_on_cpus_that_have_it(
    monkeypatch: pytest.MonkeyPatch, native: bool, device: str, asked: str, used: str
) -> None:
    from fieldtruth.detectors import device as devices

    monkeypatch.setattr(devices, "native_bfloat16", lambda: native)
    assert devices.resolve_precision(asked, torch.device(device)) == used


def test_an_unknown_precision_is_refused() -> None:
    from fieldtruth.detectors.device import resolve_precision

    with pytest.raises(DeviceError, match="auto, float32, bfloat16"):
        resolve_precision("float16", torch.device("cpu"))
    with pytest.raises(ValueError, match="resolve 'auto' first"):
        load_bundle("unused.safetensors", precision="auto")


def test_the_non_learned_baselines_always_run_in_float32(tmp_path) -> None:  # noqa: ANN001
    from fieldtruth.detectors.baseline import vessel_baseline_card
    from fieldtruth.detectors.bundle import save_bundle
    from fieldtruth.detectors.filters import VesselBaseline

    path = tmp_path / "baseline.safetensors"
    save_bundle(path, VesselBaseline(), vessel_baseline_card(threshold=0.5))
    assert load_bundle(path, precision="bfloat16").precision == "float32"
