"""Tests of the offline leads map: self-contained, escaped, tiered, encrypted, coloured by review status."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import geopandas as gpd
import pytest
from click.testing import CliRunner
from shapely.geometry import Point, shape

from fieldtruth.maps.cells import aggregate_cells
from fieldtruth.maps.crypto import open_sealed
from fieldtruth.maps.errors import MapInputError, OfflineMapError, RunFolderError
from fieldtruth.maps.leads import BANNER, build_leads_map
from fieldtruth.maps.offline import finalise_html, remote_references
from fieldtruth.review.errors import LedgerTamperedError
from fieldtruth.review.ledger import Ledger
from fieldtruth.tests.data.runfolder import HOSTILE
from fieldtruth.tests.maps.test_leads_fixture import HOSTILE_JS, make_map_run

PASS = "correct horse battery staple"
DATA = re.compile(r"<script>window\.FT_DATA = (.*?);</script>", re.DOTALL)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    return make_map_run(tmp_path_factory.mktemp("maps") / "run", hostile=True)


def _data(page: str) -> dict:
    return json.loads(DATA.search(page).group(1))


def test_restricted_map_is_sealed_and_self_contained(run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIELDTRUTH_PASSPHRASE", PASS)
    out = build_leads_map(run.path, chip_px=16, quicklook_px=256)
    page = out.read_text(encoding="utf-8")
    assert (out.stat().st_mode & 0o777) == 0o600
    assert remote_references(page) == [] and "<link" not in page and "<script src" not in page
    sealed = _data(page)["sealed"]
    assert sealed["iterations"] >= 310_000 and len(base64.b64decode(sealed["salt"])) == 16
    for secret in ("site-0001", "S2B_45RUJ", "kilnnet", "kiln density"):
        assert secret not in page
    payload = json.loads(open_sealed(sealed, PASS))
    assert len(payload["leads"]["rows"]) == len(run.detections)
    assert payload["quicklook"]["uri"].startswith("data:image/png;base64,")
    chip = payload["leads"]["fields"].index("chip")
    chips = [r[chip] for r in payload["leads"]["rows"] if r[chip]]
    assert len(chips) == len(run.detections)  # every fixture site lies inside the scene
    assert payload["metrics"]["precision"] == 0.81 and payload["perClass"]["brick_kiln"]["recall"] == 0.79
    assert payload["dates"] == "2026-01-15/2026-03-15" and len(payload["sectors"]["rows"]) == 3
    assert BANNER in page


def test_missing_passphrase_is_refused(run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIELDTRUTH_PASSPHRASE", raising=False)
    with pytest.raises(MapInputError, match="FIELDTRUTH_PASSPHRASE"):
        build_leads_map(run.path)
    with pytest.raises(MapInputError, match="at least 12"):
        build_leads_map(run.path, passphrase="short")


def test_csp_pins_every_script(run) -> None:
    page = build_leads_map(run.path, encrypt=False, chip_px=0, quicklook_px=0).read_text(encoding="utf-8")
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page).group(1)
    assert "default-src 'none'" in csp and "img-src data:;" in csp and "connect-src" not in csp
    scripts = re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    assert len(scripts) == 5
    for body in scripts:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert page.index("Content-Security-Policy") < page.index("<script>")
    assert "NOT ENCRYPTED" in page


def test_online_basemap_opens_one_host_only(run) -> None:
    page = build_leads_map(run.path, encrypt=False, online_basemap=True, chip_px=0,
                           quicklook_px=0).read_text()
    csp = re.search(r'content="(default-src[^"]+)"', page).group(1)
    assert "img-src data: https://tile.openstreetmap.org;" in csp and "Online basemap ON" in page


def test_hostile_strings_are_encoded(run) -> None:
    page = build_leads_map(run.path, encrypt=False, chip_px=0, quicklook_px=0).read_text(encoding="utf-8")
    for hostile in (HOSTILE, HOSTILE_JS, "</script><script>alert(2)"):
        assert hostile not in page
    assert page.count("</script>") == 5
    payload = _data(page)["payload"]
    flat = json.dumps(payload)
    assert HOSTILE in flat and HOSTILE_JS in flat  # kept verbatim as data, drawn with textContent


def test_statuses_from_the_ledger(run) -> None:
    with Ledger.open(run.path / "review.sqlite") as ledger:
        ledger.register_sites(run.path / "detections.parquet")
        ledger.decide("site-0004", "confirmed", "imagery", "rv07")
    page = build_leads_map(run.path, encrypt=False, chip_px=0, quicklook_px=0).read_text()
    payload = _data(page)["payload"]
    status = {r[3]: r[2] for r in payload["leads"]["rows"]}
    assert status["site-0004"] == "confirmed" and payload["counts"]["confirmed"] == 1


def _coords(geometry: dict) -> set[tuple[float, float]]:
    out: set[tuple[float, float]] = set()

    def walk(c):  # noqa: ANN001
        if isinstance(c[0], (int, float)):
            out.add((round(c[0], 6), round(c[1], 6)))
        else:
            for x in c:
                walk(x)

    walk(geometry["coordinates"])
    return out


def test_shared_has_only_cell_coordinates(run) -> None:
    page = build_leads_map(run.path, tier="shared").read_text(encoding="utf-8")
    payload = _data(page)["payload"]
    cells = gpd.read_file(run.path / "risk_shared.geojson")
    allowed = set().union(*(_coords(json.loads(gpd.GeoSeries([g]).to_json())["features"][0]["geometry"])
                            for g in cells.geometry))
    numbers = {float(x) for x in re.findall(r"-?\d+\.\d{3,}", json.dumps(payload["risk"]))}
    allowed_numbers = {v for xy in allowed for v in xy}
    assert numbers <= allowed_numbers | {float(s) for s in cells["score"].dropna()}
    assert set(payload) >= {"risk"}
    assert not {"leads", "sectors", "quicklook", "coverage", "counts"} & set(payload)
    for value in set(run.detections["site_id"]) | set(run.detections["scene_id"]) | {"kiln B"}:
        assert value not in page
    for f in payload["risk"]["features"]:
        assert set(f["properties"]) == {"cell", "band", "score", "why"}
        assert all(shape(f["geometry"]).covers(Point(x, y)) for x, y in _coords(f["geometry"]))
    for p in run.detections.geometry:
        assert f"{p.x:.4f}" not in page and f"{p.y:.4f}" not in page


def test_shared_without_risk_falls_back_to_counts(tmp_path: Path) -> None:
    from fieldtruth.tests.data.runfolder import make_run_folder

    run = make_run_folder(tmp_path / "run", n=60, seed=2)
    payload = _data(build_leads_map(run.path, tier="shared").read_text())["payload"]
    assert payload["riskCounts"] and payload["risk"]["features"]
    assert all(f["properties"]["count"] >= 3 for f in payload["risk"]["features"])


def test_tampered_ledger_refuses_the_map(tmp_path: Path) -> None:
    import sqlite3

    run = make_map_run(tmp_path / "run")
    with Ledger.open(run.path / "review.sqlite") as ledger:
        ledger.register_sites(run.path / "detections.parquet")
        ledger.decide("site-0004", "rejected", "imagery", "rv07")
    db = sqlite3.connect(run.path / "review.sqlite", isolation_level=None)
    db.execute("DROP TRIGGER decisions_no_update")
    db.execute("UPDATE decisions SET decision = 'confirmed'")
    db.close()
    with pytest.raises(LedgerTamperedError, match="seq=1"):
        build_leads_map(run.path, encrypt=False)


def test_bad_inputs(tmp_path: Path) -> None:
    run = make_map_run(tmp_path / "run")
    with pytest.raises(MapInputError, match="tier"):
        build_leads_map(run.path, tier="public")
    (run.path / "coverage.parquet").unlink()
    with pytest.raises(RunFolderError, match="coverage.parquet"):
        build_leads_map(run.path, encrypt=False)


def test_aggregate_cells_counts_and_suppresses() -> None:
    xy = [(1000, 1000), (2000, 1500), (4000, 4000), (100, 4900), (6000, 1000), (9000, 2000), (20000, 20000)]
    pts = gpd.GeoDataFrame(geometry=[Point(x, y) for x, y in xy], crs="EPSG:6933").to_crs("EPSG:4326")
    assert list(aggregate_cells(pts)["count"]) == [4]
    assert list(aggregate_cells(pts, min_count=2)["count"]) == [4, 2]


def test_guard_refuses_remote_references() -> None:
    with pytest.raises(OfflineMapError, match="x.example"):
        finalise_html('<meta content="__FIELDTRUTH_CSP__"><link href="https://x.example/a.css">')
    with pytest.raises(OfflineMapError, match="image host"):
        finalise_html('<meta content="__FIELDTRUTH_CSP__">', img_hosts=("http://evil",))


@pytest.mark.slow  # derives the passphrase key twice
def test_cli_map_and_export(run, tmp_path: Path) -> None:
    from fieldtruth.pipelines.cli_maps import map_command

    runner = CliRunner()
    res = runner.invoke(map_command, [str(run.path), "--out", str(tmp_path / "m.html")],
                        input=f"{PASS}\n{PASS}\n",
                        env={"FIELDTRUTH_PASSPHRASE": ""})
    assert res.exit_code == 0, res.output
    assert "encrypted" in res.output and PASS not in res.output
    assert "sealed" in _data((tmp_path / "m.html").read_text())
    res = runner.invoke(map_command, [str(run.path), "--no-encrypt", "--out", str(tmp_path / "p.html")])
    assert res.exit_code == 0 and "readable by anyone" in res.output
    res = runner.invoke(map_command, [str(run.path), "--export", "csv", "--out", str(tmp_path / "q.csv")])
    assert res.exit_code == 0 and "UNENCRYPTED" in res.output
