"""``scan --previous``: a later scan of the same region keeps the site ids of the leads it finds again."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest

from fieldtruth.imagery._synthetic_draw import Box
from fieldtruth.imagery.synthetic import generate_scene
from fieldtruth.imagery.synthetic_dates import later_date
from fieldtruth.pipelines.errors import RunFolderError
from fieldtruth.pipelines.scan import ScanConfig, scan
from fieldtruth.pipelines.tileresult import load_tile_results
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.lineage import read_lineage

pytestmark = pytest.mark.slow


def _config(scene: Path, bundle: Path, out: Path, **extra: object) -> ScanConfig:
    return ScanConfig(imagery=scene, detector=bundle, out=out, tile_size=256, workers=1, **extra)


def _metric(path: Path) -> gpd.GeoDataFrame:
    frame = gpd.read_parquet(path)
    return frame.to_crs(frame.estimate_utm_crs())


def test_a_second_date_keeps_the_ids_of_sites_found_again(quick_bundle: Path, tmp_path: Path) -> None:
    first = generate_scene(tmp_path / "d1", seed=7, size=640)
    second = later_date(first, tmp_path / "d2", remove=1, add=1, seed=2, cloud=Box(0, 0, 160, 160))
    one, two = tmp_path / "run1", tmp_path / "run2"
    scan(_config(first.path, quick_bundle, one))
    scan(_config(second.path, quick_bundle, two, previous=(one,)))
    a, b = _metric(one / "detections.parquet"), _metric(two / "detections.parquet")
    assert len(a) and len(b)
    same_place = b.sjoin_nearest(a, max_distance=1.0, lsuffix="two", rsuffix="one")
    same_place = same_place[same_place["label_two"] == same_place["label_one"]]
    assert len(same_place) >= 1  # unchanged ground gives the same leads again ...
    assert (same_place["site_id_two"] == same_place["site_id_one"]).all()  # ... under the same ids
    tiles = {d.site_id for r in load_tile_results(two / "tiles").values() for d in r.detections}
    assert set(b["site_id"]) <= tiles  # the tile results carry the ids too (resume, forget)
    assert read_lineage(two).previous == (one.resolve(),) and read_lineage(one).later == (two.resolve(),)
    with Ledger.of_run(two) as ledger:
        assert set(ledger.sites()) == set(b["site_id"])
    assert json.loads((two / "run.json").read_text())["config"]["previous"] == [str(one)]
    again = scan(_config(second.path, quick_bundle, two, previous=(one,), resume=True))
    assert again.skipped == again.tiles
    assert set(gpd.read_parquet(two / "detections.parquet")["site_id"]) == set(b["site_id"])


def test_a_previous_run_that_is_not_one_is_refused_before_anything_is_written(
        small_scene: Path, quick_bundle: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFolderError, match="detections.parquet"):
        scan(_config(small_scene, quick_bundle, tmp_path / "run", previous=(tmp_path / "empty",)))
    assert not (tmp_path / "run").exists()
