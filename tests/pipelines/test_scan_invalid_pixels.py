"""A scan of imagery whose pixels are not numbers: coverage says where, and garbage makes no leads.

Before, a tile with a NaN block was reported fully covered and lost all its leads (NaN spread through
the model), and a band of 1e38 values gave hundreds of leads at score 1.0.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

from fieldtruth.imagery.target import grid_for_scene
from fieldtruth.ingest.scene import open_scene
from fieldtruth.pipelines.scan import ScanConfig, scan
from fieldtruth.tests.data.hostile import invalid_pixels_copy

pytestmark = pytest.mark.slow

NAN_BLOCK = (slice(300, 360), slice(300, 360))  # inside the core of tile (1, 1) of 256 px tiles
INF_BLOCK = (slice(40, 80), slice(40, 100))  # inside the core of tile (0, 0)


def _scan(imagery: Path, bundle: Path, out: Path) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    summary = scan(ScanConfig(imagery=imagery, detector=bundle, out=out, tile_size=256, workers=1))
    assert not summary.failed
    return gpd.read_parquet(out / "detections.parquet"), gpd.read_parquet(out / "coverage.parquet")


def _away_from(detections: gpd.GeoDataFrame, scene_dir: Path, blocks, margin_px: int) -> gpd.GeoDataFrame:
    """The detections farther than ``margin_px`` from every block (in the scene's pixel grid)."""
    scene = open_scene(scene_dir, hash_files=False)
    points = detections.to_crs(scene.crs)
    cols, rows = ~scene.transform * (points.geometry.x.to_numpy(), points.geometry.y.to_numpy())
    keep = np.ones(len(points), dtype=bool)
    for r, c in blocks:
        near = ((rows > r.start - margin_px) & (rows < r.stop + margin_px)
                & (cols > c.start - margin_px) & (cols < c.stop + margin_px))
        keep &= ~near
    return detections[keep]


def test_non_numbers_are_not_covered_and_leads_elsewhere_survive(small_scene: Path, quick_bundle: Path,
                                                                  tmp_path: Path) -> None:
    clean, clean_coverage = _scan(small_scene, quick_bundle, tmp_path / "clean")
    broken = invalid_pixels_copy(small_scene, tmp_path / "broken", nan_block=NAN_BLOCK, inf_block=INF_BLOCK)
    found, coverage = _scan(broken, quick_bundle, tmp_path / "broken-run")
    assert set(clean_coverage.status) == {"covered"}
    by_tile = coverage.set_index("tile_id")
    grid = grid_for_scene(open_scene(broken, hash_files=False), tile_size=256, halo=32)
    hit = {grid.tile(1, 1).id: 60 * 60, grid.tile(0, 0).id: 40 * 60}
    for tile_id, row in by_tile.iterrows():
        if tile_id in hit:
            assert row.valid_fraction == pytest.approx(1 - hit[tile_id] / 256**2, abs=1e-3)
            assert row.status == "partial"
        else:
            assert row.valid_fraction == 1.0 and row.status == "covered"
    assert np.isfinite(found.score).all()
    margin = 40  # the detector's receptive field reaches this far from a block
    expected = _away_from(clean, small_scene, (NAN_BLOCK, INF_BLOCK), margin)
    kept = _away_from(found, broken, (NAN_BLOCK, INF_BLOCK), margin)
    assert len(expected) > 0
    assert sorted(np.round(kept.geometry.x, 6)) == sorted(np.round(expected.geometry.x, 6))


def test_a_band_of_1e38_gives_no_leads_and_no_coverage(small_scene: Path, quick_bundle: Path,
                                                       tmp_path: Path) -> None:
    garbage = invalid_pixels_copy(small_scene, tmp_path / "garbage", huge_band="B08")
    found, coverage = _scan(garbage, quick_bundle, tmp_path / "garbage-run")
    certain = int((found.score >= 0.999).sum())
    assert len(found) == 0, f"{len(found)} leads from garbage, {certain} at score 1.0"
    assert set(coverage.status) == {"not covered"}
