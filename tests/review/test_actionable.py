"""The actionable export: only independently confirmed sites, with their trail; refusal otherwise."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from fieldtruth.review.actionable import Rule, export_actionable
from fieldtruth.review.errors import InvalidDecisionError, LedgerTamperedError, NotActionableError
from fieldtruth.review.ledger import Ledger
from fieldtruth.tests.data.runfolder import make_run_folder


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    path = make_run_folder(tmp_path / "run", seed=11).path
    with Ledger.open(path / "review.sqlite") as led:
        led.register_sites(path / "detections.parquet")
    return path


def _decide(run_dir: Path, *rows: tuple[str, str, str, str]) -> None:
    with Ledger.open(run_dir / "review.sqlite") as led:
        for site, decision, method, reviewer in rows:
            led.decide(site, decision, method, reviewer, note=f"{decision} by {reviewer}")


def test_refuses_when_nothing_is_decided(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "act.geojson"
    with pytest.raises(NotActionableError, match="Nothing was written"):
        export_actionable(run_dir, out)
    assert not out.exists()


def test_refuses_single_and_non_independent_confirmations(run_dir: Path, tmp_path: Path) -> None:
    _decide(
        run_dir,
        ("site-0001", "confirmed", "imagery", "rv01"),
        ("site-0002", "confirmed", "imagery", "rv01"),
        ("site-0002", "confirmed", "field", "rv01"),  # same reviewer twice is not independent
    )
    out = tmp_path / "act.geojson"
    with pytest.raises(NotActionableError, match="best site has 1 confirming reviewer"):
        export_actionable(run_dir, out)
    assert not out.exists()


def test_includes_exactly_the_qualifying_sites(run_dir: Path, tmp_path: Path) -> None:
    _decide(
        run_dir,
        ("site-0001", "confirmed", "imagery", "rv01"),
        ("site-0001", "confirmed", "field", "rv02"),  # qualifies
        ("site-0002", "confirmed", "imagery", "rv01"),
        ("site-0002", "confirmed", "imagery", "rv02"),
        ("site-0002", "rejected", "field", "rv02"),  # rv02's later rejection supersedes
        ("site-0003", "confirmed", "imagery", "rv01"),
        ("site-0003", "confirmed", "imagery", "rv02"),
        ("site-0003", "confirmed", "imagery", "rv03"),
        ("site-0003", "rejected", "field", "rv04"),  # a standing rejection blocks
        ("site-0004", "uncertain", "imagery", "rv01"),
        ("site-0004", "confirmed", "imagery", "rv01"),
        ("site-0004", "confirmed", "imagery", "rv03"),  # qualifies, imagery only
        ("site-0005", "confirmed", "imagery", "rv01"),  # one confirmation only
    )
    out = tmp_path / "act.geojson"
    assert export_actionable(run_dir, out) == ["site-0001", "site-0004"]
    doc = json.loads(out.read_text())
    assert [f["properties"]["site_id"] for f in doc["features"]] == ["site-0001", "site-0004"]
    first = doc["features"][0]
    assert first["geometry"]["type"] == "Point" and len(first["geometry"]["coordinates"]) == 2
    trail = first["properties"]["decision_trail"]
    assert [(t["decision"], t["reviewer"], t["method"]) for t in trail] == [
        ("confirmed", "rv01", "imagery"),
        ("confirmed", "rv02", "field"),
    ]
    assert trail[0]["evidence"]["note"] == "confirmed by rv01"
    assert first["properties"]["confirmed_by"] == ["rv01", "rv02"]
    assert doc["rule"] == {"min_confirmations": 2, "require_field_visit": False}

    assert export_actionable(run_dir, out, Rule(2, require_field_visit=True)) == ["site-0001"]
    with pytest.raises(NotActionableError, match="3 different reviewers"):
        export_actionable(run_dir, out, Rule(3))
    assert export_actionable(run_dir, out, Rule(1)) == ["site-0001", "site-0004", "site-0005"]
    with pytest.raises(InvalidDecisionError):
        export_actionable(run_dir, out, Rule(0))


def test_refuses_when_the_chain_does_not_verify(run_dir: Path, tmp_path: Path) -> None:
    _decide(
        run_dir, ("site-0001", "confirmed", "imagery", "rv01"), ("site-0001", "confirmed", "field", "rv02")
    )
    db = sqlite3.connect(run_dir / "review.sqlite", isolation_level=None)
    db.execute("DROP TRIGGER decisions_no_update")
    db.execute("UPDATE decisions SET reviewer = 'rv09' WHERE seq = 1")
    db.close()
    out = tmp_path / "act.geojson"
    with pytest.raises(LedgerTamperedError, match="seq=1"):
        export_actionable(run_dir, out)
    assert not out.exists()
