"""Tests of the offline leads map: self-contained, escaped, tiered, coloured by review status."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import Point

from fieldtruth.maps.cells import aggregate_cells
from fieldtruth.maps.errors import MapInputError, OfflineMapError, RunFolderError
from fieldtruth.maps.leads import BANNER, NOT_COVERED, STATUS_COLOURS, build_leads_map
from fieldtruth.maps.offline import finalise_html, offline_map, remote_references
from fieldtruth.review.errors import LedgerTamperedError
from fieldtruth.review.ledger import Ledger
from fieldtruth.tests.data.runfolder import HOSTILE, make_run_folder

URL = re.compile(r"https?://[^\s\"'<>)]+")
# Every http(s) string allowed in the page, and why: none is fetched.
ALLOWED_URLS = {
    "http://www.w3.org/2000/svg",  # SVG namespace identifier in leaflet.js
    "https://leafletjs.com",  # leaflet.js licence comment and its default attribution (replaced)
    "https://bugs.chromium.org/p/chromium/issues/detail?id=600120",  # leaflet.css comment
    "https://bugzilla.mozilla.org/show_bug.cgi?id=888319",  # leaflet.css comment
}


@pytest.fixture()
def run(tmp_path: Path):
    return make_run_folder(tmp_path / "run", seed=1, hostile=True)


def _status_colours_in_page(page: str) -> dict[str, str]:
    """site-id-free view: map 'ft-status-X' class -> fillColor used, from the embedded JSON."""
    found = {}
    for colour, cls in re.findall(
        r'"fillColor":"(#[0-9a-f]{6})","fillOpacity":0.9,"className":"ft-lead ft-status-(\w+)"', page
    ):
        found[cls] = colour
    return found


def test_restricted_map_is_self_contained(run) -> None:
    out = build_leads_map(run.path)
    assert out == run.path / "maps" / "leads_restricted.html"
    page = out.read_text(encoding="utf-8")
    assert remote_references(page) == []
    loads = re.compile(r"""(?:src|href)\s*=\s*\\?["']?\s*(?:https?:)?//[^"'\\ >]*""", re.IGNORECASE)
    markup = re.sub(r"<script>.*?</script>", "", page, flags=re.DOTALL)
    assert loads.findall(markup) == []
    # Inside scripts only Leaflet's attribution link remains (an <a href>, not a load; replaced at runtime).
    assert set(loads.findall(page)) == {'href="https://leafletjs.com'}
    assert set(URL.findall(page)) <= ALLOWED_URLS
    for cdn in ("cdn.jsdelivr", "code.jquery", "cdnjs", "bootstrapcdn", "unpkg"):
        assert cdn not in page
    assert "<script src" not in page and "<link" not in page
    assert "Leaflet 1.9.4" in page  # vendored copy inlined
    assert "url(images/" not in page and "url(data:image/png;base64," in page  # CSS icons inlined
    assert (out.stat().st_mode & 0o777) == 0o600


def test_csp_pins_every_script(run) -> None:
    page = build_leads_map(run.path).read_text(encoding="utf-8")
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page).group(1)
    assert "default-src 'none'" in csp and "img-src data:" in csp and "style-src 'unsafe-inline'" in csp
    scripts = re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    assert len(scripts) >= 2
    import base64
    import hashlib

    for body in scripts:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert page.index("Content-Security-Policy") < page.index("<script>")


def test_banner_legend_and_coverage_label(run) -> None:
    page = build_leads_map(run.path).read_text(encoding="utf-8")
    assert html.escape(BANNER) in page
    assert "NOT low risk" in page and html.escape(NOT_COVERED) in page
    assert 'class="ft-legend"' in page and "L.control.layers" in page
    assert "fieldtruth review decide run site-0003" in page
    assert "fitBounds" in page


def test_hostile_strings_are_escaped(run) -> None:
    page = build_leads_map(run.path).read_text(encoding="utf-8")
    assert HOSTILE not in page
    assert "<script>alert(2)" not in page and "</script><script>alert" not in page
    # Escaped for HTML, then JSON-encoded with <, >, & as \u escapes inside the script.
    escaped = json.dumps(html.escape(HOSTILE))[1:-1].replace("&", "\\u0026")
    assert escaped in page


def test_statuses_from_the_ledger_change_the_colour(run) -> None:
    before = _status_colours_in_page(build_leads_map(run.path).read_text(encoding="utf-8"))
    assert before == {"unverified": STATUS_COLOURS["unverified"]}
    with Ledger.open(run.path / "review.sqlite") as ledger:
        ledger.decide("site-0004", "confirmed", "imagery", "rv07")
        ledger.decide("site-0005", "confirmed", "imagery", "rv07")
        ledger.decide("site-0005", "rejected", "field", "rv08")
    page = build_leads_map(run.path).read_text(encoding="utf-8")
    after = _status_colours_in_page(page)
    assert after == {s: STATUS_COLOURS[s] for s in ("unverified", "confirmed", "rejected")}
    assert page.count("ft-status-confirmed") == 1 and page.count("ft-status-rejected") == 1
    assert page.count("ft-status-unverified") == len(run.detections) - 2


def test_tampered_ledger_refuses_the_map(run) -> None:
    import sqlite3

    build_leads_map(run.path)
    with Ledger.open(run.path / "review.sqlite") as ledger:
        ledger.decide("site-0004", "rejected", "imagery", "rv07")
    db = sqlite3.connect(run.path / "review.sqlite", isolation_level=None)
    db.execute("DROP TRIGGER decisions_no_update")
    db.execute("UPDATE decisions SET decision = 'confirmed'")
    db.close()
    with pytest.raises(LedgerTamperedError, match="seq=1"):
        build_leads_map(run.path)


def _coordinate_strings(points: gpd.GeoDataFrame) -> set[str]:
    out = set()
    for p in points.geometry:
        for v in (p.x, p.y):
            out |= {repr(v), f"{v:.4f}", f"{v:.5f}", f"{v:.6f}", str(round(v, 7))}
    return out


def test_shared_tier_has_no_detection_coordinates(tmp_path: Path) -> None:
    run = make_run_folder(tmp_path / "run", n=60, seed=2, hostile=True)
    out = build_leads_map(run.path, tier="shared")
    assert out.name == "leads_shared.html"
    page = out.read_text(encoding="utf-8")
    assert html.escape(BANNER) in page and remote_references(page) == []
    assert "ft-lead" not in page and "circleMarker([d.lat" not in page
    leaked = [s for s in _coordinate_strings(run.detections) if s in page]
    assert leaked == []
    for value in set(run.detections["site_id"]) | set(run.detections["scene_id"]):
        assert value not in page and html.escape(value) not in page
    shapes = re.findall(r"L\.geoJSON\((\{.*?\}), \{", page)
    cells = json.loads(shapes[-1])["features"]
    assert cells, "expected at least one cell with >= 3 leads in this fixture"
    assert all("leads in this cell" in f["properties"]["tip"] for f in cells)


def test_aggregate_cells_counts_and_suppresses() -> None:
    # 4 points in one 5 km cell, 2 in another, 1 alone, in EPSG:6933 metres.
    xy = [(1000, 1000), (2000, 1500), (4000, 4000), (100, 4900), (6000, 1000), (9000, 2000), (20000, 20000)]
    pts = gpd.GeoDataFrame(geometry=[Point(x, y) for x, y in xy], crs="EPSG:6933").to_crs("EPSG:4326")
    cells = aggregate_cells(pts)
    assert list(cells["count"]) == [4]
    assert cells.crs.to_epsg() == 4326
    area = cells.to_crs("EPSG:6933").area.iloc[0]
    assert area == pytest.approx(25e6, rel=1e-6)
    assert list(aggregate_cells(pts, min_count=2)["count"]) == [4, 2]
    with pytest.raises(MapInputError):
        aggregate_cells(pts, cell_m=0)


def test_bad_inputs(run, tmp_path: Path) -> None:
    with pytest.raises(MapInputError, match="tier"):
        build_leads_map(run.path, tier="public")
    (run.path / "coverage.parquet").unlink()
    with pytest.raises(RunFolderError, match="coverage.parquet"):
        build_leads_map(run.path)
    with pytest.raises(FileNotFoundError):
        build_leads_map(tmp_path / "nowhere")


def test_guard_refuses_remote_references() -> None:
    fmap = offline_map()
    page = (
        fmap.get_root()
        .render()
        .replace("</head>", '<link rel="stylesheet" href="https://x.example/a.css"></head>')
    )
    with pytest.raises(OfflineMapError, match="x.example"):
        finalise_html(page)
    assert remote_references('<div style="background:url(//evil.example/p.png)"></div>') == [
        "//evil.example/p.png"
    ]
    assert remote_references('<img src="data:image/png;base64,AAAA">') == []
