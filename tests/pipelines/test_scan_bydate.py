"""``scan --by-date``: imagery of several dates scanned into one linked run per date, never mosaicked."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import geopandas as gpd
import pystac
import pytest
from click.testing import CliRunner

from fieldtruth.imagery.synthetic import generate_scene
from fieldtruth.imagery.synthetic_dates import later_date
from fieldtruth.pipelines.bydate import imagery_dates, scan_by_date
from fieldtruth.pipelines.changes import region_changes
from fieldtruth.pipelines.cli import cli
from fieldtruth.pipelines.errors import PreflightError
from fieldtruth.pipelines.preflight import preflight
from fieldtruth.pipelines.scan import ScanConfig
from fieldtruth.review.lineage import read_lineage
from fieldtruth.tests.data.stac import item_for_folder


@pytest.fixture(scope="module")
def two_dates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A static catalogue of one region on two dates (a kiln gone and one new on the second)."""
    root = tmp_path_factory.mktemp("bydate")
    first = generate_scene(root / "scenes" / "d1", seed=5, size=384, n_kilns=6)
    second = later_date(first, root / "scenes" / "d2", remove=1, add=1, seed=1, days=60)
    catalog = pystac.Catalog("region", "one region on two dates")
    for scene in (first, second):
        item = item_for_folder(scene.path, f"region-{scene.acquired}")
        item.datetime = dt.datetime.fromisoformat(scene.acquired).replace(tzinfo=dt.UTC)
        catalog.add_item(item)
    catalog.normalize_and_save(str(root), catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json", [first.acquired, second.acquired]


def _config(imagery: Path, bundle: Path, out: Path, **extra: object) -> ScanConfig:
    return ScanConfig(imagery=imagery, detector=bundle, out=out, tile_size=256, workers=1, **extra)


def test_the_dates_of_the_imagery_and_one_date_alone(two_dates, quick_bundle: Path, tmp_path: Path) -> None:
    catalog, dates = two_dates
    assert imagery_dates(_config(catalog, quick_bundle, tmp_path / "r")) == dates
    plan = preflight(_config(catalog, quick_bundle, tmp_path / "r", date=dates[1]))
    assert [s.acquired[:10] for s in plan.scenes] == [dates[1]]
    with pytest.raises(PreflightError, match="no scene of the imagery was acquired on '2020-01-01'"):
        preflight(_config(catalog, quick_bundle, tmp_path / "r", date="2020-01-01"))


def test_by_date_does_not_go_with_a_dry_run(two_dates, quick_bundle: Path, tmp_path: Path) -> None:
    catalog, _ = two_dates
    result = CliRunner().invoke(cli, ["scan", "--imagery", str(catalog), "--detector", str(quick_bundle),
                                      "--out", str(tmp_path / "r"), "--by-date", "--dry-run"])
    assert result.exit_code == 2 and "--by-date cannot go with --dry-run" in result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_one_linked_run_per_date(two_dates, quick_bundle: Path, tmp_path: Path) -> None:
    catalog, dates = two_dates
    summaries = scan_by_date(_config(catalog, quick_bundle, tmp_path / "region"))
    runs = [tmp_path / "region" / d for d in dates]
    assert [s.run_dir for s in summaries] == runs
    for run, date in zip(runs, dates, strict=True):
        scenes = json.loads((run / "run.json").read_text())["inputs"]["scenes"]
        assert [s["acquired"][:10] for s in scenes] == [date]  # one date's scenes only: no mosaic
        assert set(gpd.read_parquet(run / "detections.parquet")["acquired"]) <= {date}
    assert read_lineage(runs[1]).previous == (runs[0].resolve(),)
    changes = region_changes(runs)
    assert changes.dates == dates and len(changes.sites) >= 1
