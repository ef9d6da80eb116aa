"""The shared risk view: grid-cell geometry only, no site attribute, no count under k, not-covered shown."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from fieldtruth.ingest.sectors import load_declaration
from fieldtruth.maps.risk import build_risk_cells, write_risk
from fieldtruth.maps.risk_grid import build_grid
from fieldtruth.maps.risk_shared import shared_view
from fieldtruth.tests.data.runfolder import make_run_folder
from fieldtruth.tests.data.sectors import kilneye_declaration, sites_frame, write_declaration, write_kiln_run
from fieldtruth.tests.data.shared import needs_shared_data

TO_GRID = Transformer.from_crs(4326, 6933, always_xy=True)


def _coordinates(geometry: dict) -> np.ndarray:
    coords = np.array(geometry["coordinates"], dtype=object)
    flat: list = []

    def walk(node: object) -> None:
        pair = isinstance(node, (list, tuple, np.ndarray)) and len(node) == 2
        if pair and all(isinstance(v, float | int) for v in node):
            flat.append(node)
        else:
            for child in node:  # type: ignore[union-attr]
                walk(child)

    walk(coords.tolist())
    return np.array(flat, dtype=float)


def assert_shared_view_is_safe(shared: dict, k: int, cell_m: float, grid_cells: set[str],
                               forbidden: list[str]) -> None:
    """Every coordinate is a grid vertex, no count under k, no forbidden attribute or value."""
    text = json.dumps(shared)
    for word in forbidden:
        assert word not in text, f"{word!r} appears in the shared view"
    assert shared["features"], "the shared view is empty"
    for feature in shared["features"]:
        assert feature["geometry"]["type"] in {"Polygon", "MultiPolygon"}
        xy = _coordinates(feature["geometry"])
        gx, gy = TO_GRID.transform(xy[:, 0], xy[:, 1])
        assert np.allclose(np.asarray(gx) / cell_m, np.round(np.asarray(gx) / cell_m), atol=2e-4)  # <= 1 m
        assert np.allclose(np.asarray(gy) / cell_m, np.round(np.asarray(gy) / cell_m), atol=2e-4)
        props = feature["properties"]
        for key, value in props.items():
            if key.startswith("sites") or key == "detections":
                assert value is None or value == 0 or value >= k, f"{key}={value} < k in {props['cell_id']}"
        if props["cells"] == 1 and props["cell_id"] != "not_covered":
            assert props["cell_id"] in grid_cells


def _grid_ids(run: Path, cell_m: float) -> set[str]:
    import shapely

    coverage = gpd.read_parquet(run / "coverage.parquet").to_crs(6933)
    return set(build_grid(shapely.union_all(coverage.geometry.to_numpy()), cell_m).ids)


@pytest.mark.slow
@needs_shared_data("kilneye")
def test_real_kilns_shared_view_reveals_no_site(tmp_path: Path) -> None:
    run = write_kiln_run(tmp_path / "run")
    risk = build_risk_cells(run, [kilneye_declaration()])
    assert risk.sites_in_aoi["kilneye"] == 21_940  # 21,941 rows, one reported duplicate
    assert risk.cells["sites_brick_kilns"].sum() == 21_940
    out = write_risk(run, risk, k=3)
    shared = json.loads(out.shared.read_text())
    forbidden = ["kiln_type", "FCBK", "Zigzag", "state", "uttar_pradesh", "lat", "lon", "Point"]
    assert_shared_view_is_safe(shared, 3, 5_000.0, _grid_ids(run, 5_000.0), forbidden)
    shown = sum(f["properties"].get("sites") or 0 for f in shared["features"])
    assert shown > 15_000  # most kilns are in cells or blocks of at least k
    assert any(f["properties"]["band"] == "not covered" for f in shared["features"])


def test_generated_shared_view_is_safe_with_merging(tmp_path: Path) -> None:
    run = make_run_folder(tmp_path / "run", n=20).path
    frame = sites_frame(60, seed=9)
    frame.to_csv(tmp_path / "sites.csv", index=False)
    decl = load_declaration(write_declaration(tmp_path / "d.yaml", ["sites.csv"]))
    for k in (2, 3, 5):
        risk = build_risk_cells(run, [decl], cell_m=2_000)
        shared = shared_view(risk.cells, k=k, merge=3)
        assert_shared_view_is_safe(shared, k, 2_000.0, _grid_ids(run, 2_000.0),
                                   ["kiln_type", "FCBK", "Zigzag", "site-0"])
        assert {"not covered"} <= {f["properties"]["band"] for f in shared["features"]}


def test_small_cells_are_merged_or_suppressed() -> None:
    cells = pd.DataFrame({
        "cell_id": ["0_0", "1_0", "0_1", "5_5", "9_9"], "ix": [0, 1, 0, 5, 9], "iy": [0, 0, 1, 5, 9],
        "cell_m": 1000.0, "coverage": 1.0, "sites_total": [1, 1, 1, 7, 1], "sites_fishing": [1, 1, 1, 7, 1],
        "det_count": 0, "score": [0.1, 0.2, 0.3, 0.5, 0.9], "band": ["low", "low", "low", "medium", "high"],
        "explanation": '{"sector_sites": 0.1}',
    })
    shared = shared_view(gpd.GeoDataFrame(cells, geometry=[None] * 5, crs=4326), k=3, merge=4)
    ids = {f["properties"]["cell_id"]: f["properties"] for f in shared["features"]}
    assert set(ids) == {"5_5", "block_0_0_x4"}  # the lone site at 9_9 is suppressed
    assert ids["block_0_0_x4"]["cells"] == 3 and ids["block_0_0_x4"]["sites"] == 5  # 3 rounded to 5
    assert ids["5_5"]["sites"] == 5 and ids["5_5"]["score"] == 0.5
    with pytest.raises(ValueError, match="k, merge"):
        shared_view(gpd.GeoDataFrame(cells, geometry=[None] * 5, crs=4326), k=0)
