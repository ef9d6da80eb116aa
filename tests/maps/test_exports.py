"""Tests of the field exports: GeoPackage, KML (escaped, well-formed) and the queue CSV."""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import pytest

from fieldtruth.maps.errors import MapInputError
from fieldtruth.maps.exports import export_sites
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
