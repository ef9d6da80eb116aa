"""A scan on the GPU finds the sites a scan on the CPU finds (runs where CUDA is; skips where it is not)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
import torch

from fieldtruth.detectors.bundle import load_bundle
from fieldtruth.pipelines.scan import ScanConfig, scan

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="needs a CUDA device (--device cuda without one: test_preflight.py)"),
]

#: Largest difference of a lead's score between the CPU and the GPU (float32 kernels differ in rounding).
SCORE_TOLERANCE = 1e-3
#: Largest distance (metres, in the grid's CRS) between the same lead found on each.
POSITION_TOLERANCE_M = 0.5


def _leads(
    small_scene: Path, quick_bundle: Path, out: Path, device: str, workers: int = 1,
) -> gpd.GeoDataFrame:
    # precision auto would be bfloat16 on some CPUs, float32 on GPUs
    summary = scan(ScanConfig(imagery=small_scene, detector=quick_bundle, out=out, workers=workers,
                              device=device, precision="float32"))
    assert summary.done == summary.tiles and not summary.failed
    assert json.loads((out / "run.json").read_text())["device"] == {"asked": device, "used": device}
    return gpd.read_parquet(out / "detections.parquet")


@pytest.mark.parametrize("gpu_workers", [1, 2])  # 2: processes sharing the GPU, each its share of the blocks
def test_a_scan_on_the_gpu_finds_the_sites_of_a_scan_on_the_cpu(
    small_scene: Path, quick_bundle: Path, tmp_path: Path, gpu_workers: int,
) -> None:
    on_cpu = _leads(small_scene, quick_bundle, tmp_path / "cpu", "cpu")
    on_gpu = _leads(small_scene, quick_bundle, tmp_path / "gpu", "cuda", gpu_workers)
    threshold = load_bundle(quick_bundle).card.threshold
    assert len(on_cpu) > 0
    for one, other in ((on_cpu, on_gpu), (on_gpu, on_cpu)):
        for lead in one[one.score >= threshold + SCORE_TOLERANCE].itertuples():
            distances = other.geometry.distance(lead.geometry)
            nearest = distances.idxmin()
            assert distances[nearest] <= POSITION_TOLERANCE_M, lead
            assert abs(other.score[nearest] - lead.score) <= SCORE_TOLERANCE, lead
