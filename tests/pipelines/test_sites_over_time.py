"""Sites over time: linking runs of a region by position, histories and statuses against the truth."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
from click.testing import CliRunner
from shapely.geometry import Point

from fieldtruth.pipelines.cli import cli
from fieldtruth.pipelines.errors import RunFolderError
from fieldtruth.pipelines.sitehistory import site_histories
from fieldtruth.pipelines.sitelinks import RunSites, link_runs, link_tolerance_m, load_run
from fieldtruth.tests.data.region import DATES, TRUTH, coverage_on, visible, write_region
from fieldtruth.tests.data.runfolder import UTM

D1, D2, D3 = DATES


@pytest.fixture
def region(tmp_path: Path) -> tuple[Path, dict[str, gpd.GeoDataFrame]]:
    return tmp_path, write_region(tmp_path)


def _truth_status(site, since: str = D2) -> str:
    seen = [d for d in DATES if visible(site, d)]
    if seen[-1] == D3:
        return "new" if seen[0] > since else "persistent"
    later_covered = [d for d in DATES if d > seen[-1] and not visible(site, d) and not (
        d == D3 and site.name in ("under-cloud", "hidden-d3"))]
    return "not seen lately" if later_covered else "unknown"


def _by_truth(region) -> dict:
    root, dets = region
    histories = site_histories([load_run(root / d) for d in DATES])
    truth_of = {sid: t for frame in dets.values()
                for sid, t in zip(frame["site_id"], frame["truth"], strict=True)}
    return {truth_of[h.ids[next(iter(h.ids))]]: h for h in histories}, histories


def test_linked_sites_and_statuses_match_the_truth_exactly(region) -> None:
    named, histories = _by_truth(region)
    assert len(histories) == len(TRUTH) and set(named) == {t.name for t in TRUTH}
    for site in TRUTH:
        h = named[site.name]
        seen = tuple(d for d in DATES if visible(site, d))
        assert h.seen == seen and h.first_seen == seen[0] and h.last_seen == seen[-1], site.name
        assert h.label == site.label and len(h.ids) == len(seen), site.name
        assert h.status == _truth_status(site), site.name
    assert {n for n, h in named.items() if h.status == "new"} == {"added-d3", "added-d3-b", "added-d3-c"}
    assert named["gone-d2"].missed == (D2, D3) and named["gone-d2"].status == "not seen lately"


def test_a_site_under_cloud_on_the_last_date_is_unknown_not_gone(region) -> None:
    named, _ = _by_truth(region)
    for name in ("under-cloud", "hidden-d3"):  # a partial tile, and a tile without imagery
        assert named[name].status == "unknown" and named[name].not_covered == (D3,)
        assert named[name].missed == ()
    assert named["gone-d3"].status == "not seen lately" and named["gone-d3"].missed == (D3,)


def test_the_site_keeps_the_id_of_its_first_sighting(region) -> None:
    root, dets = region
    named, _ = _by_truth(region)
    first = dets[D1].set_index("truth")["site_id"]
    added = dets[D2].set_index("truth")["site_id"]
    assert named["always"].site == first["always"] and named["added-d2"].site == added["added-d2"]
    assert named["twin-a"].site == first["twin-a"] and named["twin-b"].site == first["twin-b"]


def test_since_moves_what_counts_as_new(region) -> None:
    root, _ = region
    runs = [load_run(root / d) for d in DATES]
    early = {h.status for h in site_histories(runs, since="2026-02-01") if h.first_seen == D2}
    assert early == {"new"}
    assert all(h.status != "new" for h in site_histories(runs, since=D3))
    for bad in ("2026-13-01", "last week", "2026"):
        with pytest.raises(ValueError, match="ISO date"):
            site_histories(runs, since=bad)


def test_tolerance_is_half_the_object_plus_two_pixels() -> None:
    assert link_tolerance_m(10.0, 60.0) == 50.0 and link_tolerance_m(3.0, 120.0) == 66.0
    for pixel, size in ((0.0, 60.0), (10.0, -1.0)):
        with pytest.raises(ValueError, match="positive pixel and object sizes"):
            link_tolerance_m(pixel, size)


def _one(date: str, sid: str, x: float, y: float, label: str = "brick_kiln") -> RunSites:
    dets = gpd.GeoDataFrame({"site_id": [sid], "label": [label], "score": [0.7]},
                            geometry=[Point(x, y)], crs=UTM).to_crs("EPSG:4326")
    return RunSites(date, date, dets, coverage_on(date), link_tolerance_m(10.0, 60.0))


@pytest.mark.parametrize(("dx", "label", "linked"), [
    (49.0, "brick_kiln", True), (51.0, "brick_kiln", False), (0.0, "fishing_camp", False)])
def test_link_needs_the_same_class_within_the_tolerance(dx: float, label: str, linked: bool) -> None:
    x, y = 500_000.0, 2_815_000.0
    links = link_runs([_one(D1, "Sa", x, y), _one(D2, "Sb", x + dx, y, label)])
    assert (links["site"].nunique() == 1) is linked


def test_a_run_without_a_date_or_detections_is_refused(tmp_path: Path, region) -> None:
    root, _ = region
    (root / D1 / "run.json").write_text("{}")
    frame = gpd.read_parquet(root / D1 / "detections.parquet")
    frame.drop(columns="acquired").to_parquet(root / D1 / "detections.parquet")
    with pytest.raises(RunFolderError, match="acquisition date"):
        load_run(root / D1)
    with pytest.raises(RunFolderError, match="detections.parquet"):
        load_run(tmp_path / "nothing-here")


def test_changes_command_prints_counts_and_writes_the_views(region, tmp_path: Path) -> None:
    root, _ = region
    out, shared = tmp_path / "sites.csv", tmp_path / "changes_shared.geojson"
    result = CliRunner().invoke(cli, ["changes", *(str(root / d) for d in DATES), "--out", str(out),
                                      "--shared-out", str(shared)])
    assert result.exit_code == 0, result.output
    assert "new: 3  persistent: 7  not seen lately: 2  unknown: 2" in result.output
    assert len(out.read_text().splitlines()) == 1 + len(TRUTH)
    bad = CliRunner().invoke(cli, ["changes", str(root / D1), "--since", "yesterday"])
    assert bad.exit_code == 2 and "ISO date" in bad.output and "yesterday" in bad.output
