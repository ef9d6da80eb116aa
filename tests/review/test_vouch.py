"""The ledger vouches for what it seems to vouch for: site facts in the chain, erasure only by tombstone,
visit times and positions, and ledgers written before chain version 3.

The attacks here passed before chain version 3: a confirmed lead moved in ``detections.parquet`` was
exported at its new place with an intact trail, and ``erased_at`` set by hand in the ``sites`` table hid
the top lead from the queue without any tombstone, while ``review verify`` said "intact" for both.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import click
import geopandas as gpd
import pytest
import shapely
from click.testing import CliRunner

from fieldtruth.pipelines.cli_review import export_group, forget_command, review_group
from fieldtruth.review.actionable import export_actionable
from fieldtruth.review.errors import LedgerTamperedError, SiteFactsMismatchError
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.queue import review_queue
from fieldtruth.review.records import LedgerEntry
from fieldtruth.review.vouch import check_run
from fieldtruth.tests.data.ledger_v2 import ERASED, V2_DECISIONS, write_v2_ledger
from fieldtruth.tests.data.runfolder import make_run_folder

CLI = click.Group(commands=[review_group, export_group, forget_command])


def _cli(*args: object) -> click.testing.Result:
    return CliRunner().invoke(CLI, [str(a) for a in args], obj={})


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    path = make_run_folder(tmp_path / "run", seed=11).path
    with Ledger.of_run(path) as led:
        led.decide("site-0004", "confirmed", "imagery", "rv01")
        led.decide(
            "site-0004",
            "confirmed",
            "field",
            "rv02",
            visited_at="2026-03-01T15:45:00+05:30",
            evidence={"position": {"lat": 25.51, "lon": 87.02, "accuracy_m": 8.5}},
        )
    return path


def _move(run_dir: Path, site: str, *, dlon: float = 0.0, label: str | None = None) -> None:
    frame = gpd.read_parquet(run_dir / "detections.parquet")
    row = frame.site_id == site
    frame.loc[row, "geometry"] = shapely.affinity.translate(frame.loc[row, "geometry"].iloc[0], xoff=dlon)
    if label is not None:
        frame.loc[row, "label"] = label
    frame.to_parquet(run_dir / "detections.parquet")


@pytest.mark.parametrize("change", [{"dlon": 0.01}, {"dlon": 2e-6}, {"label": "fishing_camp"}])
def test_a_confirmed_lead_moved_after_the_decisions_is_not_exported(
    run_dir: Path, tmp_path: Path, change: dict
) -> None:
    out = tmp_path / "act.geojson"
    assert export_actionable(run_dir, out) == ["site-0004"]
    out.unlink()
    _move(run_dir, "site-0004", **change)
    with pytest.raises(SiteFactsMismatchError, match="site-0004"):
        export_actionable(run_dir, out)
    assert not out.exists()
    result = _cli("review", "verify", run_dir)
    assert result.exit_code == 1 and "site-0004" in result.output and "intact" not in result.output
    assert "differ from the detections" in _cli("review", "status", run_dir).output


def test_the_export_carries_the_committed_position_and_no_field_worker_position(
    run_dir: Path, tmp_path: Path
) -> None:
    export_actionable(run_dir, tmp_path / "act.geojson")
    feature = json.loads((tmp_path / "act.geojson").read_text())["features"][0]
    with Ledger.open(run_dir / "review.sqlite") as led:
        facts = list(led.entries("site-0004"))[0].facts
    assert feature["geometry"]["coordinates"] == [facts.lon, facts.lat]
    assert [t["visited_at"] for t in feature["properties"]["decision_trail"]] == [
        None,
        "2026-03-01T10:15:00Z",
    ]
    assert "25.51" not in (tmp_path / "act.geojson").read_text()


def test_erased_at_set_by_hand_hides_nothing_and_breaks_verify(run_dir: Path) -> None:
    top = review_queue(run_dir)[0].site_id
    db = sqlite3.connect(run_dir / "review.sqlite", isolation_level=None)
    db.execute("UPDATE sites SET erased_at = '2026-01-01' WHERE site_id = ?", (top,))
    db.close()
    with Ledger.open(run_dir / "review.sqlite") as led:
        check = led.verify()
        assert top in led.statuses() and top not in led.erased_sites()
    assert not check.ok and check.first_bad_site == top and "no tombstone" in check.reason
    with pytest.raises(LedgerTamperedError, match="sites table"):
        check.raise_for_error()
    assert _cli("review", "verify", run_dir).exit_code == 1
    with pytest.raises(LedgerTamperedError):
        review_queue(run_dir)


def test_edited_site_facts_in_the_chain_are_caught(run_dir: Path) -> None:
    db = sqlite3.connect(run_dir / "review.sqlite", isolation_level=None)
    facts = json.loads(db.execute("SELECT site_facts FROM decisions WHERE seq = 1").fetchone()[0])
    facts["lon"] += 0.01
    db.execute("DROP TRIGGER decisions_no_update")
    db.execute("UPDATE decisions SET site_facts = ? WHERE seq = 1", (json.dumps(facts),))
    db.close()
    with Ledger.open(run_dir / "review.sqlite") as led:
        check = led.verify()
    assert not check.ok and check.first_bad_seq == 1 and "site facts" in check.reason


def test_site_facts_cannot_be_dropped_without_a_tombstone(run_dir: Path) -> None:
    db = sqlite3.connect(run_dir / "review.sqlite", isolation_level=None)
    db.execute(
        "UPDATE decisions SET site_facts = NULL, site_salt = NULL WHERE seq = 2"
    )  # the trigger allows it
    db.close()
    with Ledger.open(run_dir / "review.sqlite") as led:
        check = led.verify()
    assert not check.ok and check.first_bad_seq == 2 and "tombstone" in check.reason


def test_visit_time_and_position_are_recorded_and_erased(run_dir: Path) -> None:
    with Ledger.open(run_dir / "review.sqlite") as led:
        entry = list(led.entries("site-0004"))[1]
    assert entry.visited_at == "2026-03-01T10:15:00Z" and entry.decided_at.startswith("20")
    assert entry.evidence["position"] == {"lat": 25.51, "lon": 87.02, "accuracy_m": 8.5}
    result = _cli("forget", run_dir, "site-0004", "--reason", "worker asked", "--by", "dpo1")
    assert result.exit_code == 0, result.output
    data = (run_dir / "review.sqlite").read_bytes()
    assert b"25.51" not in data and b"87.02" not in data
    with Ledger.open(run_dir / "review.sqlite") as led:
        entry = list(led.entries("site-0004"))[1]
        assert led.verify().ok and entry.evidence is None and entry.site_facts is None
        assert entry.visited_at == "2026-03-01T10:15:00Z"


def test_review_decide_takes_a_visit_time(run_dir: Path) -> None:
    result = _cli(
        "review",
        "decide",
        run_dir,
        "site-0001",
        "--decision",
        "confirmed",
        "--method",
        "field",
        "--reviewer",
        "RV03",
        "--visited-at",
        "2026-02-28",
    )
    assert result.exit_code == 0 and "by rv03" in result.output
    bad = _cli(
        "review",
        "decide",
        run_dir,
        "site-0001",
        "--decision",
        "confirmed",
        "--method",
        "field",
        "--reviewer",
        "rv03",
        "--visited-at",
        "2026-02-28T10:00",
    )
    assert bad.exit_code == 1 and "time zone" in bad.output
    with Ledger.open(run_dir / "review.sqlite") as led:
        assert [e.visited_at for e in led.entries("site-0001")] == ["2026-02-28"]


def test_a_version_2_ledger_upgrades_and_still_verifies(tmp_path: Path) -> None:
    run_dir = make_run_folder(tmp_path / "run", seed=11).path
    write_v2_ledger(run_dir)
    with Ledger.of_run(run_dir) as led:
        assert led.verify().ok
        entries = list(led.entries())
        assert [e.v for e in entries] == [2] * 5 and [e.reviewer for e in entries[:4]] == [
            r[3] for r in V2_DECISIONS
        ]
        assert ERASED in led.erased_sites() and ERASED not in led.statuses()
        assert led.sites()["site-0001"].lon is not None, "positions filled in on registration"
        led.decide("site-0003", "uncertain", "imagery", "rv07")
        assert [e.v for e in led.entries()][-1] == 3 and led.verify().ok
    assert check_run(run_dir).ok
    assert _cli("review", "verify", run_dir).exit_code == 0


def test_an_old_form_entry_appended_after_a_new_one_is_refused(run_dir: Path) -> None:
    with Ledger.open(run_dir / "review.sqlite") as led:
        last = list(led.entries())[-1]
        forged = LedgerEntry(
            **{
                **last.__dict__,
                "seq": last.seq + 1,
                "v": 2,
                "score": 0.9,
                "prev_hash": last.entry_hash,
                "site_facts": None,
                "site_salt": None,
                "site_sha256": None,
                "visited_at": None,
                "entry_hash": "",
            }
        )
        forged_hash = forged.computed_hash()
    db = sqlite3.connect(run_dir / "review.sqlite", isolation_level=None)
    db.execute(
        "INSERT INTO decisions (seq, v, site_id, decision, method, reviewer, decided_at, evidence, "
        "evidence_salt, evidence_sha256, bundle_sha256, score, prev_hash, entry_hash) "
        "SELECT seq + 1, 2, site_id, decision, method, reviewer, decided_at, evidence, evidence_salt, "
        "evidence_sha256, bundle_sha256, 0.9, entry_hash, ? FROM decisions WHERE seq = ?",
        (forged_hash, last.seq),
    )
    db.close()
    with Ledger.open(run_dir / "review.sqlite") as led:
        check = led.verify()
    assert not check.ok and check.first_bad_seq == last.seq + 1 and "older form" in check.reason
