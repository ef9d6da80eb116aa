"""Risk cells: grid maths, counts, review status, coverage, scoring, and what the outputs may hold."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from fieldtruth.ingest.sectors import load_declaration
from fieldtruth.maps.errors import RiskConfigError, RunFolderError
from fieldtruth.maps.risk import build_risk_cells, write_risk
from fieldtruth.maps.risk_grid import build_grid, cell_polygons, points_to_cells
from fieldtruth.maps.risk_score import RiskConfig, load_risk_config
from fieldtruth.review.ledger import Ledger
from fieldtruth.tests.data.runfolder import make_run_folder
from fieldtruth.tests.data.sectors import personal_values, sites_frame, write_declaration


def _run_with_sites(
    tmp_path: Path, n_sites: int = 120, personal: bool = False
) -> tuple[Path, Path, pd.DataFrame]:
    run = make_run_folder(tmp_path / "run").path
    frame = sites_frame(n_sites, seed=3, personal=personal)
    data = tmp_path / "data"
    data.mkdir()
    frame.to_csv(data / "sites.csv", index=False)
    return run, write_declaration(data / "decl.yaml", ["sites.csv"]), frame


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 300),
    aoi=st.tuples(st.floats(-2e5, 2e5), st.floats(-2e5, 2e5), st.floats(1e3, 6e4), st.floats(1e3, 6e4)),
    cell_m=st.sampled_from([1_000.0, 2_500.0, 5_000.0, 7_300.0]),
)
def test_total_counts_over_cells_equal_sites_inside_the_aoi(
    seed: int, n: int, aoi: tuple, cell_m: float
) -> None:
    x0, y0, w, h = aoi
    area = box(x0, y0, x0 + w, y0 + h)
    rng = np.random.default_rng(seed)
    xs = rng.uniform(x0 - w, x0 + 2 * w, n)
    ys = rng.uniform(y0 - h, y0 + 2 * h, n)
    xs[: n // 10] = np.round(xs[: n // 10] / cell_m) * cell_m  # points on cell edges
    grid = build_grid(area, cell_m)
    pos = points_to_cells(grid, gpd.GeoSeries(gpd.points_from_xy(xs, ys), crs="EPSG:6933"))
    counts = np.bincount(pos[pos >= 0], minlength=len(grid.ix))
    assert counts.sum() == int(shapely.contains_xy(area, xs, ys).sum())
    inside = pos >= 0
    assert np.all(
        shapely.intersects_xy(
            cell_polygons(grid.ix[pos[inside]], grid.iy[pos[inside]], cell_m), xs[inside], ys[inside]
        )
    )


def test_grid_ids_are_recomputable_from_indices() -> None:
    grid = build_grid(box(12_345, -6_789, 40_000, 9_000), 5_000)
    assert grid.ids[0] == f"{grid.ix[0]}_{grid.iy[0]}"
    again = build_grid(box(12_000, -7_000, 41_000, 9_500), 5_000)
    assert set(grid.ids) <= set(again.ids)
    with pytest.raises(RiskConfigError, match="cell size"):
        build_grid(box(0, 0, 1, 1), 0)
    with pytest.raises(RiskConfigError, match="larger --cell-size"):
        build_grid(box(0, 0, 1e8, 1e8), 10)


def test_cells_count_detections_by_review_status_and_sites(tmp_path: Path) -> None:
    run, decl, frame = _run_with_sites(tmp_path)
    ledger = Ledger.open(run / "review.sqlite")
    ledger.register_sites(run / "detections.parquet")
    ledger.decide("site-0001", "rejected", "imagery", "tester", note="a quarry")
    ledger.decide("site-0002", "confirmed", "field", "tester", note="seen")
    ledger.close()
    risk = build_risk_cells(run, [load_declaration(decl)])
    cells = risk.cells
    assert cells["det_count"].sum() == 20 == risk.detections_in_aoi
    assert cells["det_rejected"].sum() == 1 and cells["det_confirmed"].sum() == 1
    assert cells["det_open"].sum() == 19
    assert cells["sites_brick_kilns"].sum() == risk.sites_in_aoi["generated-kilns"]
    coverage = gpd.read_parquet(run / "coverage.parquet")
    aoi = shapely.union_all(coverage.geometry.to_numpy())
    inside = shapely.contains_xy(aoi, frame["lon"], frame["lat"]).sum()
    assert abs(risk.sites_in_aoi["generated-kilns"] - inside) <= 2  # edges differ slightly between CRSs
    assert cells.crs == "EPSG:4326" and cells["cell_id"].is_unique


def test_cells_without_coverage_are_not_covered_never_low(tmp_path: Path) -> None:
    run, decl, _ = _run_with_sites(tmp_path)
    cells = build_risk_cells(run, [load_declaration(decl)]).cells
    uncovered = cells[cells["coverage"] < 0.5]
    assert len(uncovered) and set(uncovered["band"]) == {"not covered"}
    assert not (cells[cells["band"] == "low"]["coverage"] < 0.5).any()
    full = cells[cells["coverage"] > 0.999]
    assert len(full) and (full["band"] != "not covered").all()


def test_score_is_the_sum_of_the_explained_contributions(tmp_path: Path) -> None:
    run, decl, _ = _run_with_sites(tmp_path)
    cells = build_risk_cells(run, [load_declaration(decl)]).cells
    explained = cells["explanation"].map(lambda text: sum(json.loads(text).values()))
    assert np.allclose(explained, cells["score"], atol=5e-4)
    assert cells["score"].between(0, 1).all()
    assert set(cells["band"]) <= {"low", "medium", "high", "not covered"}


def test_weights_come_from_the_config(tmp_path: Path) -> None:
    run, decl, _ = _run_with_sites(tmp_path)
    config_path = tmp_path / "risk.yaml"
    config_path.write_text(
        "weights: {leads: 0, confirmed: 0, lead_score: 0, sector_sites: 1}\nbands: {medium: 0.1, high: 0.2}\n"
    )
    config = load_risk_config(config_path)
    cells = build_risk_cells(run, [load_declaration(decl)], config=config).cells
    expected = 1 - np.exp(-cells["sites_total"] / 10.0)
    assert np.allclose(cells["score"], expected)
    covered = cells[cells["band"] != "not covered"]
    assert ((covered["score"] >= 0.2) == (covered["band"] == "high")).all()
    config_path.write_text("weights: {kilns: 1}\n")
    with pytest.raises(RiskConfigError, match="kilns"):
        load_risk_config(config_path)
    assert RiskConfig().term_weights()["sector_sites"] == 0.4


def test_area_statistics_join_by_admin_code(tmp_path: Path) -> None:
    run, decl, _ = _run_with_sites(tmp_path)
    coverage = gpd.read_parquet(run / "coverage.parquet")
    x0, y0, x1, y1 = coverage.total_bounds
    xm = (x0 + x1) / 2
    districts = gpd.GeoDataFrame(
        {"code": ["D1", "D2"]},
        geometry=[box(x0 - 1, y0 - 1, xm, y1 + 1), box(xm, y0 - 1, x1 + 1, y1 + 1)],
        crs="EPSG:4326",
    )
    districts.to_file(tmp_path / "districts.geojson")
    pd.DataFrame({"code": ["D1", "D2"], "prevalence": [0.02, 0.08]}).to_csv(
        tmp_path / "stats.csv", index=False
    )
    (tmp_path / "risk.yaml").write_text(
        "area_stats:\n  boundaries: districts.geojson\n  boundary_code: code\n  table: stats.csv\n"
        "  table_code: code\n"
        "  terms: {prevalence: {column: prevalence, weight: 0.5, min: 0, max: 0.1}}\n"
    )
    cells = build_risk_cells(
        run, [load_declaration(decl)], config=load_risk_config(tmp_path / "risk.yaml")
    ).cells
    assert set(cells["admin_code"].dropna()) == {"D1", "D2"}
    d2 = cells[cells["admin_code"] == "D2"]
    assert np.allclose(d2["stat_prevalence"], 0.08)
    assert all(abs(json.loads(e)["prevalence"] - 0.5 * 0.8 / 1.5) < 1e-3 for e in d2["explanation"])


def test_missing_run_files_are_clear(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFolderError, match="coverage.parquet"):
        build_risk_cells(tmp_path / "empty", [])


def test_personal_columns_never_reach_any_output(tmp_path: Path) -> None:
    run, decl, frame = _run_with_sites(tmp_path, personal=True)
    before = {p.name for p in run.iterdir()}
    risk = build_risk_cells(run, [load_declaration(decl)])
    outputs = write_risk(run, risk)
    written = [p for p in run.iterdir() if p.name not in before]
    assert (
        {p.name for p in written}
        == {"risk.parquet", "risk_shared.geojson", "risk.json"}
        == {p.name for p in outputs}
    )
    needles = personal_values(frame)
    for path in written:
        data = path.read_bytes()
        leaked = [n for n in needles if n in data]
        assert not leaked, f"{path.name} holds personal values {leaked[:3]}"
    assert not any(
        n in data for n in [b"@example.org", b"+91 98"] for data in [p.read_bytes() for p in written]
    )
    assert set((tmp_path / "data").iterdir()) == {
        tmp_path / "data" / "sites.csv",
        tmp_path / "data" / "decl.yaml",
    }
