"""Tests of the field exports: GeoPackage, KML (escaped, well-formed) and the queue CSV."""

from __future__ import annotations

import csv
import sqlite3
import xml.etree.ElementTree as ET
from contextlib import closing
from pathlib import Path

import geopandas as gpd
import pytest

from fieldtruth.maps.errors import MapInputError
from fieldtruth.maps.exports import export_sites
from fieldtruth.maps.layers import RISK_COLOURS, RISK_OPACITY, STATUS_COLOURS
from fieldtruth.maps.qgisstyles import sites_style, write_layer_styles
from fieldtruth.review.ledger import Ledger
from fieldtruth.tests.data.runfolder import HOSTILE
from fieldtruth.tests.maps.test_leads_fixture import HOSTILE_JS, make_map_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    run = make_map_run(tmp_path_factory.mktemp("exp") / "run", hostile=True)
    with Ledger.open(run.path / "review.sqlite") as ledger:
        ledger.register_sites(run.path / "detections.parquet")
        ledger.decide("site-0005", "rejected", "imagery", "rv07")
    return run


def test_gpkg(run, tmp_path: Path) -> None:
    out = export_sites(run.path, "gpkg", tmp_path / "s.gpkg")
    sites = gpd.read_file(out, layer="sites")
    assert len(sites) == len(run.detections) and sites.crs.to_epsg() == 4326
    assert (out.stat().st_mode & 0o777) == 0o600
    assert dict(zip(sites["site_id"], sites["status"], strict=True))["site-0005"] == "rejected"
    assert HOSTILE_JS in set(sites["label"])


def _rgba(colour: str, alpha: int = 255) -> str:
    return ",".join(str(int(colour[i:i + 2], 16)) for i in (1, 3, 5)) + f",{alpha}"


def _styles(gpkg: Path) -> dict[str, tuple[str, str, int, str]]:
    with closing(sqlite3.connect(gpkg)) as db:
        rows = db.execute("SELECT f_table_name, f_geometry_column, styleName, useAsDefault, styleQML "
                          "FROM layer_styles").fetchall()
        contents = db.execute("SELECT data_type FROM gpkg_contents WHERE table_name = 'layer_styles'")
        contents = contents.fetchall()
    assert contents == [("attributes",)], "QGIS registers its style table in gpkg_contents"
    return {table: (column, name, default, qml) for table, column, name, default, qml in rows}


def _categories(qml: str) -> tuple[str, dict[str, tuple[str, str]]]:
    """The renderer's field, and per category value its symbol's colour and fill style."""
    renderer = ET.fromstring(qml).find("renderer-v2")
    assert renderer is not None and renderer.get("type") == "categorizedSymbol"
    symbols = {}
    for symbol in renderer.iter("symbol"):
        options = {o.get("name"): o.get("value") for o in symbol.iter("Option") if o.get("name")}
        symbols[symbol.get("name")] = (options["color"], options.get("style", options.get("name")))
    return renderer.get("attr"), {c.get("value"): symbols[c.get("symbol")] for c in renderer.iter("category")}


def test_gpkg_opens_styled_in_qgis_leads_by_status_and_cells_by_risk_band(run, tmp_path: Path) -> None:
    out = export_sites(run.path, "gpkg", tmp_path / "s.gpkg")
    styles = _styles(out)
    assert set(styles) == {"sites", "risk_cells"}
    cells = gpd.read_file(out, layer="risk_cells")
    assert cells.crs.to_epsg() == 4326 and set(cells["band"]) <= set(RISK_COLOURS)
    column, name, default, qml = styles["sites"]
    assert (column, name, default) == ("geom", "fieldtruth review status", 1)
    field, categories = _categories(qml)
    assert field == "status" and field in gpd.read_file(out, layer="sites").columns
    assert categories == {status: (_rgba(colour), "circle") for status, colour in STATUS_COLOURS.items()}
    field, categories = _categories(styles["risk_cells"][3])
    assert field == "band"
    alpha = round(255 * RISK_OPACITY)
    assert categories["high"] == (_rgba(RISK_COLOURS["high"], alpha), "solid")
    assert categories["not covered"] == (_rgba(RISK_COLOURS["not covered"], alpha), "b_diagonal"), "hatched"
    assert set(categories) == set(RISK_COLOURS)


def test_gpkg_of_a_run_without_risk_cells_styles_its_leads(tmp_path: Path) -> None:
    bare = make_map_run(tmp_path / "run")
    (bare.path / "risk.parquet").unlink()
    out = export_sites(bare.path, "gpkg", tmp_path / "s.gpkg")
    assert set(_styles(out)) == {"sites"}


def test_styles_are_refused_for_a_missing_layer_or_a_file_that_is_not_a_geopackage(
    run, tmp_path: Path,
) -> None:
    out = export_sites(run.path, "gpkg", tmp_path / "s.gpkg")
    with pytest.raises(MapInputError, match="no layer \\['leads'\\] to style"):
        write_layer_styles(out, [sites_style("leads")])
    text = tmp_path / "not.gpkg"
    text.write_text("not a database" * 100)
    with pytest.raises(MapInputError, match="is not a GeoPackage"):
        write_layer_styles(text, [sites_style()])
    empty = tmp_path / "empty.gpkg"
    sqlite3.connect(empty).close()
    with pytest.raises(MapInputError, match="is not a GeoPackage"):
        write_layer_styles(empty, [sites_style()])


def test_kml_is_well_formed_and_escaped(run, tmp_path: Path) -> None:
    out = export_sites(run.path, "kml", tmp_path / "s.kml")
    text = out.read_text(encoding="utf-8")
    assert HOSTILE not in text and "<script>" not in text
    root = ET.fromstring(text)
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    marks = root.findall(".//k:Placemark", ns)
    assert len(marks) == len(run.detections)
    values = {v.text for v in root.iter("{http://www.opengis.net/kml/2.2}value")}
    assert HOSTILE in values and HOSTILE_JS in values  # round-trips as text
    lon, lat = map(float, marks[0].find(".//k:coordinates", ns).text.split(","))
    assert 86.8 < lon < 87.2 and 25.3 < lat < 25.7


def test_csv_queue(run, tmp_path: Path) -> None:
    out = export_sites(run.path, "csv", tmp_path / "q.csv")
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == len(run.detections)
    assert rows[-1]["site_id"] == "site-0005"  # decided sites after the unverified queue
    scores = [float(r["score"]) for r in rows[:-1]]
    assert scores == sorted(scores, reverse=True)
    assert rows[0]["decide_command"].startswith("fieldtruth review decide run ")
    with pytest.raises(MapInputError):
        export_sites(run.path, "shp", tmp_path / "x.shp")
