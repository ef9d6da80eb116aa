"""Real data: `fieldtruth scan` of a held-out port finds exactly what `fieldtruth evaluate` reports for it.

The port is served in Web Mercator; the scan reads a UTM grid at the card's ``gsd_m``, and evaluation
detects on that same grid (``grid="scan"``), so the counts agree exactly. The card's pixel size here
is deliberately not the port's own.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import geopandas as gpd
import pytest

from fieldtruth.detectors.baseline import vessel_baseline_card
from fieldtruth.detectors.bundle import load_bundle, save_bundle
from fieldtruth.detectors.data import ground_pixel_size
from fieldtruth.detectors.evaluate import LabelShape, ScoredPoint, match_points
from fieldtruth.detectors.filters import VesselBaseline
from fieldtruth.detectors.report import evaluate_bundle
from fieldtruth.detectors.sceneoffset import WATER_OFFSET
from fieldtruth.ingest.scene import open_scene
from fieldtruth.tests.data.shared import needs_shared_data, shared_data_root

PORT = shared_data_root() / "sen2ships" / "casablanca"


@pytest.mark.slow
@needs_shared_data("sen2ships")
@pytest.mark.parametrize("scene_offset", [{}, WATER_OFFSET], ids=["as-stored", "water-offset"])
def test_scan_of_a_port_matches_its_evaluation(tmp_path: Path, scene_offset: dict) -> None:
    from fieldtruth.pipelines.scan import ScanConfig, scan

    gsd = round(ground_pixel_size(open_scene(PORT, hash_files=False)) * 0.93, 2)
    card = dataclasses.replace(
        vessel_baseline_card(threshold=0.5), gsd_m=gsd, scene_offset=dict(scene_offset)
    )
    path = tmp_path / "baseline.safetensors"
    save_bundle(path, VesselBaseline(), card)
    bundle = load_bundle(path)
    evaluated = evaluate_bundle(bundle, [PORT], tmp_path / "eval").pooled

    scan(ScanConfig(imagery=PORT, detector=path, out=tmp_path / "run", workers=1, threads_per_worker=1))
    found = gpd.read_parquet(tmp_path / "run" / "detections.parquet")
    labels = gpd.read_file(PORT / "labels.geojson")
    utm = labels.estimate_utm_crs()
    found, labels = found.to_crs(utm), labels.to_crs(utm)
    points = [
        ScoredPoint(g.x, g.y, s, lab)
        for g, s, lab in zip(found.geometry, found["score"], found["label"], strict=True)
    ]
    shapes = [LabelShape(g, c) for g, c in zip(labels.geometry, labels["class"], strict=True)]
    scanned = match_points(points, shapes, tolerance=gsd)
    assert evaluated.tp > 0
    assert (scanned.tp, scanned.fp, scanned.fn) == (evaluated.tp, evaluated.fp, evaluated.fn)
