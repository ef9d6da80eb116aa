"""Tests of the review ledger: registration, statuses, validation, tamper evidence, concurrency."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from fieldtruth.review.errors import (
    DetectionsFormatError,
    InvalidDecisionError,
    LedgerError,
    LedgerTamperedError,
    UnknownSiteError,
)
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.records import GENESIS_HASH, STATUSES
from fieldtruth.tests.data.runfolder import make_run_folder

PHOTO = "ab" * 32


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    return make_run_folder(tmp_path / "run", seed=3).path


@pytest.fixture()
def ledger(run_dir: Path) -> Ledger:
    led = Ledger.open(run_dir / "review.sqlite")
    led.register_sites(run_dir / "detections.parquet")
    yield led
    led.close()


def _decide_five(ledger: Ledger) -> None:
    for i, decision in enumerate(["confirmed", "rejected", "uncertain", "field_visit", "confirmed"]):
        ledger.decide(f"site-000{i}", decision, "imagery", "rv07", note=f"note {i}")


def _raw(ledger: Ledger) -> sqlite3.Connection:
    """A plain sqlite3 connection as an attacker would use, with the append-only triggers dropped."""
    db = sqlite3.connect(ledger.path, isolation_level=None)
    db.execute("DROP TRIGGER decisions_no_update")
    db.execute("DROP TRIGGER decisions_no_delete")
    return db


def test_register_is_idempotent_and_everything_starts_unverified(ledger: Ledger, run_dir: Path) -> None:
    assert ledger.register_sites(run_dir / "detections.parquet") == 0
    statuses = ledger.statuses()
    assert len(statuses) == 20
    assert set(statuses.values()) == {"unverified"}
    assert ledger.counts() == {
        "unverified": 20,
        "confirmed": 0,
        "rejected": 0,
        "uncertain": 0,
        "field_visit": 0,
    }
    site = ledger.sites()["site-0000"]
    assert site.label in ("brick_kiln", "fishing_camp") and 0.5 <= site.score < 1 and site.registered_at
    assert site.lon is not None and site.lat is not None


def test_secure_delete_and_rollback_journal(ledger: Ledger) -> None:
    assert ledger._db.execute("PRAGMA secure_delete").fetchone()[0] == 1
    assert ledger._db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_later_decision_supersedes_without_editing(ledger: Ledger) -> None:
    first = ledger.decide("site-0002", "confirmed", "imagery", "rv07", evidence={"scenes": ["S2B_x"]})
    second = ledger.decide("site-0002", "rejected", "field", "rv09", evidence={"photos": [PHOTO]})
    assert ledger.statuses()["site-0002"] == "rejected"
    history = list(ledger.entries("site-0002"))
    assert [e.decision for e in history] == ["confirmed", "rejected"]
    assert history[0] == first and history[1] == second
    assert second.prev_hash == first.entry_hash and first.prev_hash == GENESIS_HASH
    assert ledger.counts()["rejected"] == 1 and ledger.counts()["confirmed"] == 0
    assert sum(ledger.counts().values()) == 20 and set(ledger.counts()) == set(STATUSES)


def test_entry_records_bundle_score_and_evidence(ledger: Ledger) -> None:
    site = ledger.sites()["site-0004"]
    entry = ledger.decide(
        "site-0004",
        "field_visit",
        "other",
        "ngo-a.rv_1",
        note="access road only",
        evidence={"scenes": [{"id": "S2B_1", "sha256": PHOTO}], "photos": [PHOTO]},
    )
    assert entry.bundle_sha256 == site.bundle_sha256 and entry.score is None and entry.v == 3
    facts = entry.facts
    assert facts is not None and entry.facts_match()
    assert (facts.label, facts.score) == (site.label, site.score)
    assert (facts.lon, facts.lat) == (site.lon, site.lat)
    assert entry.evidence == {
        "scenes": [{"id": "S2B_1", "sha256": PHOTO}],
        "photos": [PHOTO],
        "note": "access road only",
    }
    assert entry.decided_at.endswith("Z")
    assert entry.computed_hash() == entry.entry_hash


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"decision": "maybe"}, "decision"),
        ({"method": "satellite"}, "method"),
        ({"reviewer": "Jane Doe"}, "pseudonymous"),
        ({"reviewer": "jane@ngo.org"}, "pseudonymous"),
        ({"reviewer": "x" * 40}, "pseudonymous"),
        ({"evidence": {"photos": ["not-a-hash"]}}, "SHA-256"),
        ({"evidence": {"faces": []}}, "keys"),
        ({"note": "x" * 3000}, "at most"),
        ({"visited_at": "2026-03-01T10:15:00"}, "time zone"),
        ({"visited_at": "2999-01-01T00:00:00Z"}, "future"),
        ({"visited_at": "yesterday"}, "ISO 8601"),
        ({"evidence": {"position": {"lat": 91.0, "lon": 87.0}}}, "latitude"),
        ({"evidence": {"position": {"lat": 25.0, "lon": 87.0, "accuracy_m": -1}}}, "accuracy"),
        ({"evidence": {"position": {"lat": "nan", "lon": 87.0}}}, "latitude"),
        ({"evidence": {"position": {"lat": 25.0}}}, "visit position"),
    ],
)
def test_decide_validates(ledger: Ledger, kwargs: dict, match: str) -> None:
    args = {
        "site_id": "site-0001",
        "decision": "confirmed",
        "method": "imagery",
        "reviewer": "rv07",
        **kwargs,
    }
    with pytest.raises(InvalidDecisionError, match=match):
        ledger.decide(**args)
    assert list(ledger.entries()) == []


def test_unknown_site(ledger: Ledger) -> None:
    with pytest.raises(UnknownSiteError, match="nope"):
        ledger.decide("nope", "confirmed", "imagery", "rv07")
    with pytest.raises(KeyError):  # the builtin it also inherits
        ledger.decide("nope", "confirmed", "imagery", "rv07")


def test_triggers_refuse_update_and_delete(ledger: Ledger) -> None:
    _decide_five(ledger)
    db = sqlite3.connect(ledger.path, isolation_level=None)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE decisions SET decision = 'rejected' WHERE seq = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM decisions WHERE seq = 1")
    assert ledger.verify().ok


def test_verify_ok(ledger: Ledger) -> None:
    _decide_five(ledger)
    check = ledger.verify()
    assert check.ok and check.entries == 5 and check.head_hash == ledger.head()[1]
    check.raise_for_error()


def test_tamper_edit_names_the_edited_entry(ledger: Ledger) -> None:
    _decide_five(ledger)
    _raw(ledger).execute("UPDATE decisions SET decision = 'rejected' WHERE seq = 3")
    check = ledger.verify()
    assert not check.ok and check.first_bad_seq == 3 and check.first_bad_site == "site-0002"
    assert "edited" in check.reason
    with pytest.raises(LedgerTamperedError, match="seq=3"):
        check.raise_for_error()


def test_tamper_edit_evidence_json(ledger: Ledger) -> None:
    _decide_five(ledger)
    _raw(ledger).execute(
        """UPDATE decisions SET evidence = '{"note":"x","photos":[],"scenes":[]}' WHERE seq = 2"""
    )
    assert ledger.verify().first_bad_seq == 2


def test_tamper_delete_names_the_entry_after_the_gap(ledger: Ledger) -> None:
    _decide_five(ledger)
    _raw(ledger).execute("DELETE FROM decisions WHERE seq = 2")
    check = ledger.verify()
    assert not check.ok and check.first_bad_seq == 3


def test_tamper_delete_and_renumber(ledger: Ledger) -> None:
    _decide_five(ledger)
    db = _raw(ledger)
    db.execute("DELETE FROM decisions WHERE seq = 2")
    db.execute("UPDATE decisions SET seq = seq - 1 WHERE seq > 2")
    check = ledger.verify()
    assert not check.ok and check.first_bad_seq == 2 and "prev_hash" in check.reason


def test_tamper_reorder_names_the_first_moved_entry(ledger: Ledger) -> None:
    _decide_five(ledger)
    db = _raw(ledger)
    db.execute("UPDATE decisions SET seq = 100 WHERE seq = 2")
    db.execute("UPDATE decisions SET seq = 2 WHERE seq = 4")
    db.execute("UPDATE decisions SET seq = 4 WHERE seq = 100")
    check = ledger.verify()
    assert not check.ok and check.first_bad_seq == 2 and check.first_bad_site == "site-0003"


def test_tamper_rehash_one_entry_is_caught_by_the_next_link(ledger: Ledger) -> None:
    _decide_five(ledger)
    entry = list(ledger.entries())[1]
    forged = type(entry)(**{**entry.__dict__, "decision": "confirmed", "entry_hash": ""})
    _raw(ledger).execute(
        "UPDATE decisions SET decision = 'confirmed', entry_hash = ? WHERE seq = 2", (forged.computed_hash(),)
    )
    check = ledger.verify()
    assert not check.ok and check.first_bad_seq == 3


def test_statuses_follow_the_latest_decision_across_sites(ledger: Ledger) -> None:
    _decide_five(ledger)
    ledger.decide("site-0000", "uncertain", "field", "rv08")
    statuses = ledger.statuses()
    assert statuses["site-0000"] == "uncertain"
    assert statuses["site-0001"] == "rejected"
    assert statuses["site-0004"] == "confirmed"
    assert statuses["site-0010"] == "unverified"


def _worker(path: str, worker: int, start, n: int) -> None:  # noqa: ANN001 - multiprocessing Event
    led = Ledger.open(path)
    start.wait(10)
    for i in range(n):
        led.decide(
            f"site-{(worker * 7 + i) % 20:04d}", "uncertain", "imagery", f"rv{worker}", note=f"w{worker} i{i}"
        )
    led.close()


def test_two_processes_deciding_at_once_lose_nothing(run_dir: Path) -> None:
    path = run_dir / "review.sqlite"
    with Ledger.open(path) as led:
        led.register_sites(run_dir / "detections.parquet")
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    n = 40
    procs = [ctx.Process(target=_worker, args=(str(path), w, start, n)) for w in (1, 2)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with Ledger.open(path) as led:
        entries = list(led.entries())
        assert len(entries) == 2 * n
        assert [e.seq for e in entries] == list(range(1, 2 * n + 1))
        notes = {e.evidence["note"] for e in entries}
        assert notes == {f"w{w} i{i}" for w in (1, 2) for i in range(n)}
        assert led.verify().ok


def test_register_rejects_bad_detections(tmp_path: Path) -> None:
    import geopandas as gpd
    from shapely.geometry import Point

    path = tmp_path / "detections.parquet"
    gpd.GeoDataFrame({"site_id": ["a"], "label": ["x"]}, geometry=[Point(0, 0)], crs=4326).to_parquet(path)
    with Ledger.open(tmp_path / "review.sqlite") as led:
        with pytest.raises(DetectionsFormatError, match="missing"):
            led.register_sites(path)
        with pytest.raises(DetectionsFormatError, match="reading it failed"):
            led.register_sites(tmp_path / "absent.parquet")


def test_register_rejects_duplicate_site_ids(tmp_path: Path) -> None:
    rf = make_run_folder(tmp_path / "run")
    dets = rf.detections.copy()
    dets.loc[1, "site_id"] = dets.loc[0, "site_id"]
    dets.to_parquet(rf.path / "detections.parquet")
    with Ledger.open(rf.path / "review.sqlite") as led, pytest.raises(DetectionsFormatError, match="twice"):
        led.register_sites(rf.path / "detections.parquet")


def test_open_refuses_non_sqlite(tmp_path: Path) -> None:
    bad = tmp_path / "review.sqlite"
    bad.write_bytes(b"this is not a database, just bytes" * 100)
    with pytest.raises(LedgerError, match="SQLite"):
        Ledger.open(bad)
    with pytest.raises(LedgerError, match="folder"):
        Ledger.open(tmp_path / "missing" / "review.sqlite")


def _v1_file(path: Path, with_decision: bool) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(
        "CREATE TABLE sites (site_id TEXT PRIMARY KEY NOT NULL, label TEXT NOT NULL, score REAL NOT NULL, "
        "bundle_sha256 TEXT NOT NULL, scene_id TEXT NOT NULL, registered_at TEXT NOT NULL);"
        "CREATE TABLE decisions (seq INTEGER PRIMARY KEY NOT NULL, site_id TEXT, evidence TEXT);"
        "INSERT INTO sites VALUES ('site-0000', 'brick_kiln', 0.9, 'x', 's', 't'); PRAGMA user_version=1;"
    )
    if with_decision:
        db.execute("INSERT INTO decisions VALUES (1, 'site-0000', '{}')")
    db.close()


def test_empty_version_1_ledger_is_upgraded_and_a_used_one_refused(tmp_path: Path) -> None:
    _v1_file(tmp_path / "empty.sqlite", with_decision=False)
    with Ledger.open(tmp_path / "empty.sqlite") as led:
        assert led.statuses() == {"site-0000": "unverified"}
        led.decide("site-0000", "confirmed", "imagery", "rv07")
        assert led.verify().ok
    _v1_file(tmp_path / "used.sqlite", with_decision=True)
    with pytest.raises(LedgerError, match="version 1"):
        Ledger.open(tmp_path / "used.sqlite")
