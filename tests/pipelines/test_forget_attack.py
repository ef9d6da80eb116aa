"""Erasure cannot be undone: an attacker holding everything left in the run folder finds nothing.

Before site ids were random, ``fieldtruth forget`` left the erased site's id in the ledger, and the id
was an unsalted hash of class, CRS and rounded coordinates: with the run's CRS, class names and the risk
cell whose count still included the site, a brute force over the cell recovered the exact point. Here the
run folder is made the way a scan makes it (tile results stamped with ids, merged), with the odd files
that stopped erasure half-way (a UTF-16 CSV) or were never looked into (archives), and the attacker tries
every way back to the point: the ids against every place in a square around it, the risk counts against
the detections left, and every byte of every file against the site's coordinates and score.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sqlite3
import struct
import zipfile
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import pytest
from pyproj import CRS, Transformer

from fieldtruth.atomicfile import json_text
from fieldtruth.maps.risk import build_risk_cells, write_risk
from fieldtruth.pipelines.forget import forget_everywhere
from fieldtruth.pipelines.merge import DetectionContext, merge_detections, with_site_ids
from fieldtruth.pipelines.tileresult import TileDetection, TileResult
from fieldtruth.review import erasure
from fieldtruth.review.errors import ErasureError
from fieldtruth.review.ledger import Ledger
from fieldtruth.runfiles import RunFiles
from fieldtruth.tests.data.runfolder import BUNDLE_SHA, ORIGIN, UTM, make_coverage

CLASSES = ("brick_kiln", "fishing_camp")
#: Places of the leads in UTM 45N (inside covered tiles of the fixture's coverage).
PLACES = [
    (ORIGIN[0] + 1234.4, ORIGIN[1] + 15321.7, "brick_kiln", 0.9134),
    (ORIGIN[0] + 1612.0, ORIGIN[1] + 15050.0, "brick_kiln", 0.7711),
    (ORIGIN[0] + 6100.0, ORIGIN[1] + 12000.0, "fishing_camp", 0.6502),
    (ORIGIN[0] + 3100.0, ORIGIN[1] + 14000.0, "brick_kiln", 0.8823),
]


def legacy_id(label: str, crs: str, x: float, y: float) -> str:
    """How site ids were made before (the attacker knows the code: it is open source)."""
    return "S" + hashlib.sha256(f"{label}|{crs}|{round(x)}|{round(y)}".encode()).hexdigest()[:12]


def _run_folder(run_dir: Path) -> tuple[str, tuple[float, float], float]:
    """A run folder as a scan leaves it, with risk cells, decisions and odd copies; returns the victim."""
    files = RunFiles(run_dir)
    files.tiles.mkdir(parents=True)
    dets = tuple(TileDetection(x, y, score, label) for x, y, label, score in PLACES)
    result = with_site_ids(TileResult("t00", valid_fraction=1.0, detections=dets))
    files.tile_result("t00").write_text(json_text(result.to_json()))
    context = DetectionContext("S2B_T45", "2026-01-15", "kilnnet", BUNDLE_SHA, min_distance_m=30.0)
    merged = merge_detections([result], SimpleNamespace(crs=CRS.from_string(UTM)), context)
    merged.to_parquet(files.detections)
    make_coverage().to_parquet(files.coverage)
    files.run_json.write_text(json.dumps({"grid": {"crs": UTM, "resolution": 10.0}}))
    files.model_card.write_text(json.dumps({"min_distance_px": 3, "classes": list(CLASSES)}))
    write_risk(run_dir, build_risk_cells(run_dir, []), k=1)
    victim = merged.iloc[0]
    with Ledger.of_run(run_dir) as led:
        led.decide(
            victim.site_id,
            "confirmed",
            "field",
            "rv01",
            note="kiln, owner at the gate",
            evidence={
                "position": {"lat": victim.geometry.y + 1e-4, "lon": victim.geometry.x, "accuracy_m": 5}
            },
        )
        led.decide(victim.site_id, "confirmed", "imagery", "rv02")
    frame = merged.assign(lon=merged.geometry.x, lat=merged.geometry.y).drop(columns="geometry")
    (run_dir / "exports").mkdir()
    (run_dir / "exports" / "sites-utf16.csv").write_bytes(frame.to_csv(index=False).encode("utf-16"))
    with zipfile.ZipFile(run_dir / "exports" / "bundle.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("inner/sites.csv", frame.to_csv(index=False))
    (run_dir / "exports" / "sites.geojson.gz").write_bytes(gzip.compress(merged.to_json().encode()))
    return str(victim.site_id), (victim.geometry.x, victim.geometry.y), float(victim.score)


def _everything(run_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file())


def test_nothing_left_in_the_run_folder_leads_back_to_an_erased_site(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    site, (lon, lat), score = _run_folder(run_dir)
    report = forget_everywhere(run_dir, site, reason="community request", by="dpo1")
    assert {"detections.parquet", "tiles/t00.json", "exports/sites-utf16.csv", "risk.parquet"} <= set(
        report.rewritten
    )
    assert {"exports/bundle.zip", "exports/sites.geojson.gz"} <= set(report.deleted)

    # 1. brute force: every class at every metre of a 200 m square around the point gives another id
    x0, y0 = Transformer.from_crs("EPSG:4326", UTM, always_xy=True).transform(lon, lat)
    candidates = {
        legacy_id(label, UTM, x, y)
        for label in CLASSES
        for x in range(round(x0) - 100, round(x0) + 101)
        for y in range(round(y0) - 100, round(y0) + 101)
    }
    assert site not in candidates, "the site id is derived from its position"
    # 2. the risk cells count only the detections left
    cells = gpd.read_parquet(run_dir / "risk.parquet").to_crs(UTM)
    left = gpd.read_parquet(run_dir / "detections.parquet").to_crs(UTM)
    for cell in cells.itertuples():
        assert cell.det_count == int(left.within(cell.geometry).sum()), (
            f"cell {cell.cell_id} still counts the site"
        )
    assert json.loads((run_dir / "risk.json").read_text())["detections_in_aoi"] == len(PLACES) - 1
    # 3. no byte of any file holds its coordinates or score, in any encoding
    blob = _everything(run_dir)
    for value in (lon, lat, score, x0, y0):
        for needle in (
            struct.pack("<d", value),
            struct.pack(">d", value),
            repr(value).encode(),
            repr(value).encode("utf-16-le"),
            f"{value:.5f}".encode(),
        ):
            assert needle not in blob, f"{needle!r} ({value}) is still in the run folder"
    # 4. the ledger keeps who decided and when, and that something was erased, but nothing of the site
    with Ledger.open(run_dir / "review.sqlite") as led:
        assert led.verify().ok and site in led.erased_sites()
        entries = list(led.entries(site))
    assert all(e.site_facts is None and e.score is None for e in entries)
    assert [e.evidence for e in entries] == [
        None,
        None,
        {"note": "community request", "photos": [], "scenes": []},
    ]
    db = sqlite3.connect(run_dir / "review.sqlite")
    assert db.execute(
        "SELECT label, score, lon, lat, scene_id FROM sites WHERE site_id = ?", (site,)
    ).fetchone() == (None, None, None, None, None)
    assert db.execute("PRAGMA freelist_count").fetchone()[0] == 0


def test_erasure_refuses_up_front_what_it_cannot_look_into(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    site, _, _ = _run_folder(run_dir)
    (run_dir / "exports" / "old.7z").write_bytes(b"7z\xbc\xaf\x27\x1c" + b"\0" * 64)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "x")
    locked = bytearray(buffer.getvalue())
    locked[6] |= 0x1  # the member's "encrypted" flag, in the local and the central header
    locked[locked.rindex(b"PK\x01\x02") + 8] |= 0x1
    (run_dir / "locked.zip").write_bytes(bytes(locked))
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    with pytest.raises(
        ErasureError, match=r"old\.7z.*7z archive.*locked\.zip.*encrypted.*Nothing was changed"
    ):
        forget_everywhere(run_dir, site, reason="community request", by="dpo1")
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


def test_an_interrupted_erasure_is_finished_by_running_it_again(tmp_path: Path, monkeypatch) -> None:
    run_dir = tmp_path / "run"
    site, (lon, _), _ = _run_folder(run_dir)
    real, calls = erasure.shred_replace, []

    def failing(path: Path, write: object) -> None:
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real(path, write)

    monkeypatch.setattr(erasure, "shred_replace", failing)
    with pytest.raises(ErasureError, match="run `fieldtruth forget` again"):
        forget_everywhere(run_dir, site, reason="community request", by="dpo1")
    with Ledger.open(run_dir / "review.sqlite") as led:
        assert site in led.sites(), "the ledger is erased last"
    monkeypatch.setattr(erasure, "shred_replace", real)
    forget_everywhere(run_dir, site, reason="community request", by="dpo1")
    assert struct.pack("<d", lon) not in _everything(run_dir)
    with Ledger.open(run_dir / "review.sqlite") as led:
        assert led.verify().ok and site in led.erased_sites()
