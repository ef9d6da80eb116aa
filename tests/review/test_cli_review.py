"""The review, export and forget commands end to end on a seeded run folder (CliRunner)."""

from __future__ import annotations

import json
import sqlite3
import struct
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from PIL import Image
from pyproj import Transformer

from fieldtruth.ingest.scene import open_scene
from fieldtruth.pipelines.cli_review import export_group, forget_command, review_group
from fieldtruth.tests.data.rasters import scene_folder
from fieldtruth.tests.data.runfolder import UTM, make_run_folder

CLI = click.Group(commands=[review_group, export_group, forget_command])
SENTINEL = "SENTINEL-cli-7781"


def _run(*args: str) -> object:
    return CliRunner().invoke(CLI, [str(a) for a in args], obj={}, catch_exceptions=False)


@pytest.fixture()
def run(tmp_path: Path):
    rf = make_run_folder(tmp_path / "run", seed=4)
    return rf.path, rf.detections.set_index("site_id")


def _with_scene(run_dir: Path, dets, site: str, tmp_path: Path) -> None:
    point = dets.loc[site, "geometry"]
    x, y = Transformer.from_crs("EPSG:4326", UTM, always_xy=True).transform(point.x, point.y)
    folder = scene_folder(tmp_path / "scene", size=128, origin=(x - 640.0, y + 640.0), crs=UTM)
    doc = json.loads((run_dir / "run.json").read_text())
    doc["inputs"] = {"scenes": [open_scene(folder).describe()]}
    (run_dir / "run.json").write_text(json.dumps(doc))


def test_decide_queue_status_verify(run) -> None:
    run_dir, dets = run
    top = dets["score"].idxmax()
    result = _run("review", "decide", run_dir, top, "--decision", "field-visit", "--method", "imagery",
                  "--reviewer", "rv01", "--note", "check the chimney", "--scene", "S2B_x:" + "ab" * 32)
    assert result.exit_code == 0, result.output
    assert "recorded #1" in result.output
    queue = _run("review", "queue", run_dir).stdout.splitlines()
    assert queue[1].split()[0] == top and "field_visit" in queue[1]
    assert len(queue) == 1 + 20
    only = _run("review", "queue", run_dir, "--status", "field-visit").stdout.splitlines()
    assert len(only) == 2
    status = _run("review", "status", run_dir).output
    assert "unverified   19" in status and "field-visit  1" in status and "chain: intact" in status
    assert _run("review", "verify", run_dir).output.startswith("chain intact: 1 entries")
    bad = _run("review", "decide", run_dir, "site-9999", "--decision", "confirmed", "--method", "field",
               "--reviewer", "rv01")
    assert bad.exit_code == 1 and "site-9999" in bad.output


def test_queue_orders_by_risk_when_present(run) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    run_dir, dets = run
    low = dets["score"].idxmin()
    pq.write_table(pa.table({"site_id": [low], "risk": [0.9]}), run_dir / "risk.parquet")
    first = _run("review", "queue", run_dir).output.splitlines()[1].split()
    assert first[0] == low and first[3] == "0.900"


def test_verify_fails_naming_the_entry(run) -> None:
    run_dir, _ = run
    for reviewer in ("rv01", "rv02"):
        _run("review", "decide", run_dir, "site-0001", "--decision", "confirmed", "--method", "imagery",
             "--reviewer", reviewer)
    db = sqlite3.connect(run_dir / "review.sqlite", isolation_level=None)
    db.execute("DROP TRIGGER decisions_no_delete")
    db.execute("DELETE FROM decisions WHERE seq = 1")
    db.close()
    result = _run("review", "verify", run_dir)
    assert result.exit_code == 1 and "seq=2" in result.output


def test_show_copies_a_stored_chip_or_cuts_one(run, tmp_path: Path) -> None:
    run_dir, dets = run
    _with_scene(run_dir, dets, "site-0002", tmp_path)
    out = tmp_path / "chip.png"
    result = _run("review", "show", run_dir, "site-0002", "--chip-out", out)
    assert result.exit_code == 0, result.output
    assert "label:" in result.output and "decision trail (0)" in result.output
    with Image.open(out) as img:
        assert img.size == (96, 96) and img.mode == "RGB"
    (run_dir / "chips").mkdir()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(run_dir / "chips" / "site-0003.png")
    assert _run("review", "show", run_dir, "site-0003", "--chip-out", out).exit_code == 0
    assert out.read_bytes() == (run_dir / "chips" / "site-0003.png").read_bytes()
    far = _run("review", "show", run_dir, "site-0004", "--chip-out", tmp_path / "x.png")
    assert far.exit_code == 1 and "none usable" in far.output
    assert _run("review", "show", run_dir, "nope").exit_code == 1


def test_import_reports_lines_and_applies_nothing(run, tmp_path: Path) -> None:
    run_dir, _ = run
    path = tmp_path / "f.csv"
    path.write_text("site_id,decision,method,reviewer\nsite-0001,confirmed,field,rv01\nsite-0001,bad,field,rv02\n")
    result = _run("review", "import", run_dir, path)
    assert result.exit_code == 1 and f"{path}:3:" in result.output and "NOTHING" in result.output
    assert "chain intact: 0 entries" in _run("review", "verify", run_dir).output
    path.write_text("site_id,decision,method,reviewer\nsite-0001,confirmed,field,rv01\nsite-0001,confirmed,imagery,rv02\n")
    assert "imported 2" in _run("review", "import", run_dir, path).output


def test_export_actionable(run, tmp_path: Path) -> None:
    run_dir, _ = run
    out = tmp_path / "act.geojson"
    refused = _run("export", "actionable", run_dir, "--out", out)
    assert refused.exit_code == 1 and "Nothing was written" in refused.output and not out.exists()
    for reviewer, method in (("rv01", "imagery"), ("rv02", "imagery")):
        _run("review", "decide", run_dir, "site-0007", "--decision", "confirmed", "--method", method,
             "--reviewer", reviewer)
    assert _run("export", "actionable", run_dir, "--out", out, "--require-field-visit").exit_code == 1
    ok = _run("export", "actionable", run_dir, "--out", out)
    assert ok.exit_code == 0 and "1 actionable site" in ok.output
    assert [f["properties"]["site_id"] for f in json.loads(out.read_text())["features"]] == ["site-0007"]


def test_forget_end_to_end(run, tmp_path: Path) -> None:
    run_dir, dets = run
    point = dets.loc["site-0005", "geometry"]
    _run("review", "decide", run_dir, "site-0005", "--decision", "confirmed", "--method", "field",
         "--reviewer", "rv01", "--note", SENTINEL)
    (run_dir / "maps").mkdir()
    (run_dir / "maps" / "leads_restricted.html").write_text("<html></html>")
    result = _run("forget", run_dir, "site-0005", "--reason", "owner request", "--by", "dpo1")
    assert result.exit_code == 0, result.output
    assert "rewrote detections.parquet" in result.output and "fieldtruth map" in result.output
    needles = [SENTINEL.encode(), struct.pack("<d", point.x), struct.pack("<d", point.y),
               repr(point.x).encode()]
    for path in run_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(n in data for n in needles), path
    assert "chain intact: 2 entries" in _run("review", "verify", run_dir).output
    assert "ERASED" in _run("review", "show", run_dir, "site-0005").output
    again = _run("forget", run_dir, "site-0005", "--reason", "again")
    assert again.exit_code == 0 and "already erased" in again.output and "tombstone #2" in again.output
    unknown = _run("forget", run_dir, "site-9999", "--reason", "again")
    assert unknown.exit_code == 1 and "error:" in unknown.output


def test_queue_takes_the_risk_of_the_cell_holding_the_site(run) -> None:
    import geopandas as gpd
    from shapely.geometry import box

    run_dir, dets = run
    low = dets["score"].idxmin()
    p = dets.loc[low, "geometry"]
    cells = gpd.GeoDataFrame(
        {"cell_id": ["c1", "c2"], "score": [0.7, float("nan")], "band": ["high", None]},
        geometry=[box(p.x - 0.0005, p.y - 0.0005, p.x + 0.0005, p.y + 0.0005), box(0, 0, 1, 1)],
        crs=4326,
    )
    cells.to_parquet(run_dir / "risk.parquet")
    first = _run("review", "queue", run_dir).stdout.splitlines()[1].split()
    assert first[0] == low and first[3] == "0.700"
