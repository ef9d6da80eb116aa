"""The SQLite schema of the review ledger, its upgrades from versions 1 and 2, and reading a run's sites.

Version 3 (chain version 3) stores, beside each entry's salted evidence, the site facts the decision was
made on (class, score, position) with their own salt and commitment, and the visit time the person
gave. Sites keep their position so decisions can commit to it. The update trigger allows exactly one
kind of change: setting evidence, site facts and their salts to NULL (erasure); deletes are refused.
A version 2 file is upgraded in place (its rows copied verbatim, so every hash still verifies); a
version 1 file only while it holds no decisions.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import shapely

from fieldtruth.review.errors import DetectionsFormatError, LedgerError
from fieldtruth.review.records import ENTRY_KINDS, METHODS, LedgerEntry, canonical_text
from fieldtruth.review.sitedata import SiteFacts, geometry_column, point_of

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
SITE_COLUMNS: tuple[str, ...] = ("site_id", "label", "score", "bundle_sha256", "scene_id")
APPEND_ONLY = "decisions are append-only: record a new decision instead"
ERASABLE = ("evidence", "evidence_salt", "site_facts", "site_salt")

_UNCHANGED = " AND ".join(
    f"NEW.{c} IS OLD.{c}"
    for c in (
        "seq",
        "v",
        "site_id",
        "decision",
        "method",
        "reviewer",
        "decided_at",
        "visited_at",
        "evidence_sha256",
        "site_sha256",
        "bundle_sha256",
        "score",
        "prev_hash",
        "entry_hash",
    )
)
_ONLY_ERASED = " AND ".join(f"(NEW.{c} IS OLD.{c} OR NEW.{c} IS NULL)" for c in ERASABLE)

SITES_TABLE = """
CREATE TABLE sites (
    site_id TEXT PRIMARY KEY NOT NULL,
    label TEXT,
    score REAL,
    lon REAL,
    lat REAL,
    bundle_sha256 TEXT NOT NULL,
    scene_id TEXT,
    registered_at TEXT NOT NULL,
    erased_at TEXT
);
"""
DECISIONS_TABLE = f"""
CREATE TABLE decisions (
    seq INTEGER PRIMARY KEY NOT NULL,
    v INTEGER NOT NULL,
    site_id TEXT NOT NULL REFERENCES sites(site_id),
    decision TEXT NOT NULL CHECK (decision IN ({", ".join(repr(d) for d in ENTRY_KINDS)})),
    method TEXT NOT NULL CHECK (method IN ({", ".join(repr(m) for m in METHODS)})),
    reviewer TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    visited_at TEXT,
    evidence TEXT,
    evidence_salt TEXT,
    evidence_sha256 TEXT NOT NULL,
    site_facts TEXT,
    site_salt TEXT,
    site_sha256 TEXT,
    bundle_sha256 TEXT NOT NULL,
    score REAL,
    prev_hash TEXT NOT NULL,
    entry_hash TEXT NOT NULL UNIQUE
);
"""
GUARDS = f"""
CREATE INDEX decisions_site ON decisions(site_id, seq);
CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
WHEN NOT ({_UNCHANGED} AND {_ONLY_ERASED})
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END;
CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END;
"""
SCHEMA = SITES_TABLE + DECISIONS_TABLE + GUARDS

ENTRY_COLUMNS = (
    "seq, site_id, decision, method, reviewer, decided_at, evidence, evidence_salt, evidence_sha256, "
    "bundle_sha256, score, prev_hash, entry_hash, v, visited_at, site_facts, site_salt, site_sha256"
)
_V2_COLUMNS = (
    "seq, site_id, decision, method, reviewer, decided_at, evidence, evidence_salt, evidence_sha256, "
    "bundle_sha256, score, prev_hash, entry_hash"
)
_UPGRADE_FROM_2 = f"""
DROP TRIGGER IF EXISTS decisions_no_update; DROP TRIGGER IF EXISTS decisions_no_delete;
DROP INDEX IF EXISTS decisions_site;
ALTER TABLE decisions RENAME TO decisions_v2; ALTER TABLE sites RENAME TO sites_v2;
{SITES_TABLE}{DECISIONS_TABLE}
INSERT INTO sites (site_id, label, score, bundle_sha256, scene_id, registered_at, erased_at)
    SELECT site_id, NULLIF(label, ''), CASE WHEN erased_at IS NULL THEN score END, bundle_sha256,
           NULLIF(scene_id, ''), registered_at, erased_at FROM sites_v2;
INSERT INTO decisions ({_V2_COLUMNS}, v) SELECT {_V2_COLUMNS}, 2 FROM decisions_v2;
DROP TABLE decisions_v2; DROP TABLE sites_v2;
{GUARDS}
"""


ENTRY_FIELDS = tuple(c.strip() for c in ENTRY_COLUMNS.split(","))
"""The decision columns, named as the :class:`LedgerEntry` fields they hold."""


def _json_or_none(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        doc = json.loads(text)
    except (TypeError, ValueError):
        return {"unparseable": str(text)}
    return doc if isinstance(doc, dict) else {"unparseable": str(text)}


def entry_from_row(row: tuple[Any, ...]) -> LedgerEntry:
    """Rebuild an entry from a row of ``SELECT {ENTRY_COLUMNS} FROM decisions``."""
    fields = dict(zip(ENTRY_FIELDS, row, strict=True))
    fields["evidence"], fields["site_facts"] = (
        _json_or_none(fields["evidence"]),
        _json_or_none(fields["site_facts"]),
    )
    return LedgerEntry(**fields)


def insert_entry(db: sqlite3.Connection, entry: LedgerEntry) -> None:
    """Insert an entry; its evidence and site facts are stored as canonical JSON text."""
    values = {f: getattr(entry, f) for f in ENTRY_FIELDS}
    values["evidence"] = entry.canonical_evidence()
    values["site_facts"] = None if entry.site_facts is None else canonical_text(entry.site_facts)
    placeholders = ", ".join("?" * len(ENTRY_FIELDS))
    db.execute(f"INSERT INTO decisions ({ENTRY_COLUMNS}) VALUES ({placeholders})", list(values.values()))


def ensure_schema(db: sqlite3.Connection, path: Path) -> None:
    """Create the schema in a new file, or upgrade a version-2 ledger, or a version-1 one without decisions.

    Raises:
        LedgerError: If the file has an unknown version, or is version 1 with decisions already in it.
    """
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version == 1 and db.execute("SELECT count(*) FROM decisions").fetchone()[0]:
        raise LedgerError(
            f"expected ledger schema version {SCHEMA_VERSION}; {str(path)!r} is version 1 and already "
            "holds decisions. Open it with the fieldtruth version that wrote it."
        )
    if version == 1:
        db.executescript(
            "BEGIN IMMEDIATE; DROP TRIGGER IF EXISTS decisions_no_update; "
            "DROP TRIGGER IF EXISTS decisions_no_delete; DROP TABLE decisions; "
            f"ALTER TABLE sites ADD COLUMN erased_at TEXT; CREATE TABLE decisions ({_V2_COLUMNS}); COMMIT;"
        )
        version = 2
    if version == 2:
        db.executescript(f"BEGIN IMMEDIATE;{_UPGRADE_FROM_2}PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
        db.execute("VACUUM")
        log.info(
            "upgraded ledger %s to schema version %d (older entries verify as they are)", path, SCHEMA_VERSION
        )
        return
    if version != 0:
        raise LedgerError(
            f"expected ledger schema version {SCHEMA_VERSION}; {str(path)!r} has {version!r}. "
            "Open it with the fieldtruth version that wrote it."
        )
    db.executescript(f"BEGIN IMMEDIATE;{SCHEMA}PRAGMA user_version={SCHEMA_VERSION};COMMIT;")


def read_sites(path: Path) -> list[SiteFacts]:
    """Read the site columns and point of every row of ``detections.parquet`` (strictly, for the ledger).

    Only :data:`SITE_COLUMNS` and the point are read; the facts' other attributes are None.

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
    geom = geometry_column(path)
    columns = [*SITE_COLUMNS, *([geom] if geom in schema.names else [])]
    table = pq.read_table(path, columns=columns).to_pydict()
    points = (
        [point_of(g) for g in shapely.from_wkb(table[geom])]
        if geom in table
        else [None] * len(table["site_id"])
    )
    rows, seen = [], set()
    for values, point in zip(zip(*(table[c] for c in SITE_COLUMNS), strict=True), points, strict=True):
        if any(v is None for v in values):
            raise DetectionsFormatError(
                f"expected no empty values in {list(SITE_COLUMNS)}; got row {values!r}."
            )
        if values[0] in seen:
            raise DetectionsFormatError(
                f"expected unique site_id values in {str(path)!r}; {values[0]!r} appears twice. "
                "Site ids must be stable and unique per run."
            )
        seen.add(values[0])
        site_id, label, score, bundle, scene = values
        lon, lat = point if point is not None else (None, None)
        rows.append(SiteFacts(
            str(site_id), str(label), float(score), scene_id=str(scene), bundle_sha256=str(bundle),
            lon=lon, lat=lat,
        ))
    return rows


def open_connection(path: Path, timeout_s: float) -> sqlite3.Connection:
    """Connect with secure_delete on, foreign keys on and a rollback journal (never WAL)."""
    db = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
    db.execute("PRAGMA secure_delete=ON")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA journal_mode=DELETE")
    return db
