"""Erasure: the site's data is gone from the raw bytes of every file, and the chain still verifies."""

from __future__ import annotations

import csv
import json
import sqlite3
import struct
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fieldtruth.review.erasure import forget_site
from fieldtruth.review.errors import InvalidDecisionError, LedgerTamperedError, UnknownSiteError
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.records import TOMBSTONE
from fieldtruth.tests.data.runfolder import make_run_folder

SENTINEL = "SENTINEL-9f3c-owner-name-Zq"
SITE = "site-0003"
PHOTO = "cd" * 32


def _all_bytes(run_dir: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}


def _needles(lon: float, lat: float) -> list[bytes]:
    out = [SENTINEL.encode(), struct.pack("<d", lon), struct.pack("<d", lat)]
    for value in (lon, lat):
        out += [repr(value).encode(), f"{value:.6f}".encode(), f"{value:.5f}".encode()]
    return out


@pytest.fixture()
def run(tmp_path: Path):
    rf = make_run_folder(tmp_path / "run", seed=5)
    point = rf.detections.set_index("site_id").loc[SITE, "geometry"]
    run_dir = rf.path
    with Ledger.open(run_dir / "review.sqlite") as led:
        led.register_sites(run_dir / "detections.parquet")
        led.decide(SITE, "confirmed", "imagery", "rv01", note=f"kiln; owner {SENTINEL}", evidence={"photos": [PHOTO]})
        led.decide("site-0001", "confirmed", "imagery", "rv01", note="other site keeps its note")
        led.decide(SITE, "field_visit", "field", "rv02", note=f"visit again {SENTINEL * 40}")
    (run_dir / "chips").mkdir()
    (run_dir / "chips" / f"{SITE}.png").write_bytes(b"\x89PNG fake " + SENTINEL.encode())
    (run_dir / "maps").mkdir()
    (run_dir / "maps" / "leads_restricted.html").write_text(f"<html>{point.x!r},{point.y!r}</html>")
    rf.detections.to_file(run_dir / "extra.geojson", driver="GeoJSON")
    with open(run_dir / "sites.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["site_id", "lon", "lat"])
        for sid, geom in zip(rf.detections.site_id, rf.detections.geometry, strict=True):
            writer.writerow([sid, repr(geom.x), repr(geom.y)])
    (run_dir / "exports").mkdir()
    (run_dir / "exports" / "sites.kml").write_text(f"<kml><name>{SITE}</name><c>{point.x!r}</c></kml>")
    (run_dir / "exports" / "other.kml").write_text("<kml><name>site-0001</name></kml>")
    return run_dir, point.x, point.y


def test_needles_are_present_before_erasure(run) -> None:
    run_dir, lon, lat = run
    blob = b"".join(_all_bytes(run_dir).values())
    for needle in (SENTINEL.encode(), struct.pack("<d", lon), repr(lon).encode()):
        assert needle in blob


def test_forget_removes_every_trace_and_chain_verifies(run) -> None:
    run_dir, lon, lat = run
    report = forget_site(run_dir, SITE, reason="owner request under data-protection law", by="dpo1")
    for path, data in _all_bytes(run_dir).items():
        for needle in _needles(lon, lat):
            assert needle not in data, f"{needle!r} still in {path}"
    names = {p.name for p in run_dir.rglob("*")}
    assert not any(n.endswith(("-wal", "-journal", "-shm", ".tmp")) for n in names)
    assert f"{SITE}.png" not in names and "leads_restricted.html" not in names
    assert report.maps_deleted == ("maps/leads_restricted.html",)
    assert sorted(report.rewritten) == ["detections.parquet", "extra.geojson", "sites.csv"]
    assert report.deleted == (f"chips/{SITE}.png", "exports/sites.kml")
    assert (run_dir / "exports" / "other.kml").exists()
    table = pq.read_table(run_dir / "detections.parquet").to_pydict()
    assert SITE not in table["site_id"] and len(table["site_id"]) == 19
    assert SITE not in json.dumps(json.loads((run_dir / "extra.geojson").read_text()))
    with Ledger.open(run_dir / "review.sqlite") as led:
        check = led.verify()
        assert check.ok and check.entries == 4
        entries = list(led.entries(SITE))
        assert [e.decision for e in entries] == ["confirmed", "field_visit", TOMBSTONE]
        assert entries[0].erased and entries[1].erased and not entries[2].erased
        assert entries[2].evidence["note"] == "owner request under data-protection law"
        assert SITE not in led.statuses() and SITE in led.erased_sites()
        assert list(led.entries("site-0001"))[0].evidence["note"] == "other site keeps its note"
        assert led._db.execute("PRAGMA freelist_count").fetchone()[0] == 0
        with pytest.raises(UnknownSiteError):
            led.decide(SITE, "confirmed", "imagery", "rv03")
        led.register_sites(run_dir / "detections.parquet")
        assert SITE not in led.statuses()


def test_forget_twice_finishes_what_is_left_and_unknown_is_refused(run) -> None:
    run_dir, lon, _ = run
    first = forget_site(run_dir, SITE, reason="owner request")
    (run_dir / "restored-backup.csv").write_text(f"site_id,lon\n{SITE},{lon!r}\n", encoding="utf-8")
    again = forget_site(run_dir, SITE, reason="again")
    assert again.already_erased and again.tombstone_seq == first.tombstone_seq
    assert again.rewritten == ("restored-backup.csv",)
    with Ledger.open(run_dir / "review.sqlite") as led:
        assert led.verify().ok and [e.decision for e in led.entries(SITE)].count(TOMBSTONE) == 1
    with pytest.raises(UnknownSiteError):
        forget_site(run_dir, "site-9999", reason="x")
    with pytest.raises(InvalidDecisionError, match="reason"):
        forget_site(run_dir, "site-0001", reason="  ")


def test_erasing_evidence_without_tombstone_is_tampering(run) -> None:
    run_dir, _, _ = run
    db = sqlite3.connect(run_dir / "review.sqlite", isolation_level=None)
    db.execute("UPDATE decisions SET evidence = NULL, evidence_salt = NULL WHERE seq = 1")  # the trigger allows it
    db.close()
    with Ledger.open(run_dir / "review.sqlite") as led:
        check = led.verify()
    assert not check.ok and check.first_bad_seq == 1 and "tombstone" in check.reason
    with pytest.raises(LedgerTamperedError):
        forget_site(run_dir, "site-0001", reason="x")


def test_trigger_refuses_other_updates_after_erasure(run) -> None:
    run_dir, _, _ = run
    forget_site(run_dir, SITE, reason="owner request")
    db = sqlite3.connect(run_dir / "review.sqlite", isolation_level=None)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE decisions SET reviewer = 'x' WHERE seq = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE decisions SET evidence = '{}' WHERE seq = 2")
