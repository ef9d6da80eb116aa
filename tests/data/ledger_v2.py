"""A review ledger exactly as fieldtruth wrote it before chain version 3 (schema 2), made from scratch.

The file is written with plain SQL and the version 2 canonical document re-implemented here, not with
the current code, so the tests show that ledgers written by the older version still open and verify.
It holds decisions with reviewer ids in mixed case (as version 2 stored them), and one site erased the
version 2 way (evidence NULL, label and scene blanked, a tombstone).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq

V2_SCHEMA = """
CREATE TABLE sites (site_id TEXT PRIMARY KEY NOT NULL, label TEXT NOT NULL, score REAL NOT NULL,
    bundle_sha256 TEXT NOT NULL, scene_id TEXT NOT NULL, registered_at TEXT NOT NULL, erased_at TEXT);
CREATE TABLE decisions (seq INTEGER PRIMARY KEY NOT NULL, site_id TEXT NOT NULL REFERENCES sites(site_id),
    decision TEXT NOT NULL, method TEXT NOT NULL, reviewer TEXT NOT NULL, decided_at TEXT NOT NULL,
    evidence TEXT, evidence_salt TEXT, evidence_sha256 TEXT NOT NULL, bundle_sha256 TEXT NOT NULL,
    score REAL NOT NULL, prev_hash TEXT NOT NULL, entry_hash TEXT NOT NULL UNIQUE);
CREATE INDEX decisions_site ON decisions(site_id, seq);
CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
WHEN NOT (NEW.seq IS OLD.seq AND NEW.entry_hash IS OLD.entry_hash AND NEW.evidence IS NULL)
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
PRAGMA user_version=2;
"""

#: (site, decision, method, reviewer, note) appended in this order; site-0005 is erased afterwards.
V2_DECISIONS = (
    ("site-0001", "confirmed", "imagery", "RV07", "two chimneys"),
    ("site-0001", "confirmed", "field", "rv09", "visited"),
    ("site-0002", "rejected", "imagery", "rv07", "a water tank"),
    ("site-0005", "confirmed", "imagery", "rv07", "owner named on the gate"),
)
ERASED = "site-0005"


def _text(doc: dict) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _entry_hash(fields: dict) -> str:
    doc = {"v": 2, **fields}
    return hashlib.sha256(
        json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    ).hexdigest()


def write_v2_ledger(run_dir: Path) -> Path:
    """Write ``run_dir/review.sqlite`` in the version 2 format from ``run_dir/detections.parquet``."""
    table = pq.read_table(run_dir / "detections.parquet").to_pydict()
    path = run_dir / "review.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(V2_SCHEMA)
    scores = dict(zip(table["site_id"], table["score"], strict=True))
    for site, label, score, bundle, scene in zip(
        table["site_id"],
        table["label"],
        table["score"],
        table["bundle_sha256"],
        table["scene_id"],
        strict=True,
    ):
        db.execute(
            "INSERT INTO sites VALUES (?, ?, ?, ?, ?, '2026-01-01T00:00:00Z', NULL)",
            (site, label, score, bundle, scene),
        )
    bundle, prev = table["bundle_sha256"][0], "0" * 64
    rows = [(*row, {"note": row[4], "photos": [], "scenes": []}) for row in V2_DECISIONS]
    rows.append(
        (
            ERASED,
            "erased",
            "other",
            "dpo1",
            "owner request",
            {"note": "owner request", "photos": [], "scenes": []},
        )
    )
    for seq, (site, decision, method, reviewer, _note, evidence) in enumerate(rows, start=1):
        salt = f"{seq:032x}"
        commitment = hashlib.sha256(f"{salt}\n{_text(evidence)}".encode()).hexdigest()
        fields = {
            "seq": seq,
            "site_id": site,
            "decision": decision,
            "method": method,
            "reviewer": reviewer,
            "decided_at": f"2026-02-0{seq}T10:00:00.000000Z",
            "evidence_sha256": commitment,
            "bundle_sha256": bundle,
            "score": float(scores[site]),
            "prev_hash": prev,
        }
        entry_hash = _entry_hash(fields)
        db.execute(
            "INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                seq,
                site,
                decision,
                method,
                reviewer,
                fields["decided_at"],
                _text(evidence),
                salt,
                commitment,
                bundle,
                fields["score"],
                prev,
                entry_hash,
            ),
        )
        prev = entry_hash
    db.execute(
        "UPDATE decisions SET evidence = NULL, evidence_salt = NULL "
        "WHERE site_id = ? AND decision != 'erased'",
        (ERASED,),
    )
    db.execute(
        "UPDATE sites SET label = '', scene_id = '', erased_at = '2026-02-05T10:00:00.000000Z' "
        "WHERE site_id = ?",
        (ERASED,),
    )
    db.close()
    return path
