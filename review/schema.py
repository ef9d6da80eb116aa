"""The SQLite schema of the review ledger, its upgrade from version 1, and reading sites from a run.

Version 2 stores each entry's evidence next to a random salt and the salted SHA-256 commitment that the
entry hash covers, so the evidence can be erased (set to NULL) without breaking the chain. The update
trigger allows exactly that change and nothing else; deletes are always refused.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq

from fieldtruth.review.errors import DetectionsFormatError, LedgerError
from fieldtruth.review.records import ENTRY_KINDS, METHODS

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
SITE_COLUMNS: tuple[str, ...] = ("site_id", "label", "score", "bundle_sha256", "scene_id")
APPEND_ONLY = "decisions are append-only: record a new decision instead"

_UNCHANGED = " AND ".join(
    f"NEW.{c} IS OLD.{c}"
    for c in (
        "seq", "site_id", "decision", "method", "reviewer", "decided_at", "evidence_sha256",
        "bundle_sha256", "score", "prev_hash", "entry_hash",
    )
)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS sites (
    site_id TEXT PRIMARY KEY NOT NULL,
    label TEXT NOT NULL,
    score REAL NOT NULL,
    bundle_sha256 TEXT NOT NULL,
    scene_id TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    erased_at TEXT
);
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY NOT NULL,
    site_id TEXT NOT NULL REFERENCES sites(site_id),
    decision TEXT NOT NULL CHECK (decision IN ({", ".join(repr(d) for d in ENTRY_KINDS)})),
    method TEXT NOT NULL CHECK (method IN ({", ".join(repr(m) for m in METHODS)})),
    reviewer TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    evidence TEXT,
    evidence_salt TEXT,
    evidence_sha256 TEXT NOT NULL,
    bundle_sha256 TEXT NOT NULL,
    score REAL NOT NULL,
    prev_hash TEXT NOT NULL,
    entry_hash TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS decisions_site ON decisions(site_id, seq);
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
WHEN NOT ({_UNCHANGED} AND NEW.evidence IS NULL AND NEW.evidence_salt IS NULL)
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END;
"""

ENTRY_COLUMNS = (
    "seq, site_id, decision, method, reviewer, decided_at, evidence, evidence_salt, evidence_sha256, "
    "bundle_sha256, score, prev_hash, entry_hash"
)


def ensure_schema(db: sqlite3.Connection, path: Path) -> None:
    """Create the schema in a new file, or upgrade a version-1 ledger that holds no decisions yet.

    Raises:
        LedgerError: If the file has an unknown version, or is version 1 with decisions already in it.
    """
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version == 1:
        if db.execute("SELECT count(*) FROM decisions").fetchone()[0]:
            raise LedgerError(
                f"expected ledger schema version {SCHEMA_VERSION}; {str(path)!r} is version 1 and already "
                "holds decisions. Open it with the fieldtruth version that wrote it."
            )
        db.executescript(
            "BEGIN IMMEDIATE; DROP TRIGGER IF EXISTS decisions_no_update; "
            "DROP TRIGGER IF EXISTS decisions_no_delete; DROP TABLE decisions; "
            f"ALTER TABLE sites ADD COLUMN erased_at TEXT;{SCHEMA}"
            f"PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
        )
        log.info("upgraded empty ledger %s to schema version %d", path, SCHEMA_VERSION)
        return
    if version != 0:
        raise LedgerError(
            f"expected ledger schema version {SCHEMA_VERSION}; {str(path)!r} has {version!r}. "
            "Open it with the fieldtruth version that wrote it."
        )
    db.executescript(f"BEGIN IMMEDIATE;{SCHEMA}PRAGMA user_version={SCHEMA_VERSION};COMMIT;")


def read_sites(path: Path) -> list[tuple[str, str, float, str, str]]:
    """Read the site columns of ``detections.parquet`` with pyarrow (no geometry needed).

    Raises:
        DetectionsFormatError: If the file is unreadable, lacks a column, has empty values or repeats a
            ``site_id``.
    """
    try:
        schema = pq.read_schema(path)
    except (OSError, ValueError) as exc:
        raise DetectionsFormatError(
            f"expected a GeoParquet of detections at {str(path)!r}; reading it failed: {exc}. "
            "Run `fieldtruth scan` to produce it."
        ) from exc
    missing = [c for c in SITE_COLUMNS if c not in schema.names]
    if missing:
        raise DetectionsFormatError(
            f"expected columns {list(SITE_COLUMNS)} in {str(path)!r}; missing {missing!r} "
            f"(found {schema.names!r}). Re-run the scan with this fieldtruth version."
        )
    table = pq.read_table(path, columns=list(SITE_COLUMNS)).to_pydict()
    rows = list(zip(*(table[c] for c in SITE_COLUMNS), strict=True))
    seen: set[str] = set()
    for row in rows:
        if any(v is None for v in row):
            raise DetectionsFormatError(f"expected no empty values in {list(SITE_COLUMNS)}; got row {row!r}.")
        if row[0] in seen:
            raise DetectionsFormatError(
                f"expected unique site_id values in {str(path)!r}; {row[0]!r} appears twice. "
                "Site ids must be stable and unique per run."
            )
        seen.add(row[0])
    return [(str(a), str(b), float(c), str(d), str(e)) for a, b, c, d, e in rows]


def open_connection(path: Path, timeout_s: float) -> sqlite3.Connection:
    """Connect with secure_delete on, foreign keys on and a rollback journal (never WAL)."""
    db = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
    db.execute("PRAGMA secure_delete=ON")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA journal_mode=DELETE")
    return db
