"""The review ledger: sites of a run and an append-only, hash-chained log of human decisions.

One SQLite file per run folder (``review.sqlite``). Sites are registered from ``detections.parquet``
and start ``unverified``. Decisions are only ever appended: a later decision supersedes an earlier one
without editing it. Triggers refuse ``UPDATE`` and ``DELETE`` on decisions, and every entry carries the
SHA-256 of a canonical JSON of itself plus the previous entry's hash, so :meth:`Ledger.verify` detects
(and names the first of) any edited, deleted, inserted or reordered entry, even one made behind the
triggers' back. Appends run inside ``BEGIN IMMEDIATE`` so concurrent writers serialise and lose nothing.

The file uses a rollback journal (``journal_mode=DELETE``, not WAL) and ``secure_delete=ON`` so freed
pages are overwritten with zeros rather than left readable.

Example:
    >>> ledger = Ledger.open(run_dir / "review.sqlite")  # doctest: +SKIP
    >>> ledger.register_sites(run_dir / "detections.parquet")  # doctest: +SKIP
    >>> ledger.decide("kiln-0001", "confirmed", "imagery", "rv07", note="chimney visible")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow.parquet as pq

from fieldtruth.review.errors import (
    DetectionsFormatError,
    LedgerError,
    UnknownSiteError,
)
from fieldtruth.review.records import (
    DECISIONS,
    GENESIS_HASH,
    METHODS,
    STATUSES,
    UNVERIFIED,
    ChainCheck,
    Evidence,
    LedgerEntry,
    make_evidence,
    validate_choice,
    validate_reviewer,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
SITE_COLUMNS: tuple[str, ...] = ("site_id", "label", "score", "bundle_sha256", "scene_id")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS sites (
    site_id TEXT PRIMARY KEY NOT NULL,
    label TEXT NOT NULL,
    score REAL NOT NULL,
    bundle_sha256 TEXT NOT NULL,
    scene_id TEXT NOT NULL,
    registered_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY NOT NULL,
    site_id TEXT NOT NULL REFERENCES sites(site_id),
    decision TEXT NOT NULL CHECK (decision IN ({", ".join(repr(d) for d in DECISIONS)})),
    method TEXT NOT NULL CHECK (method IN ({", ".join(repr(m) for m in METHODS)})),
    reviewer TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    evidence TEXT NOT NULL,
    bundle_sha256 TEXT NOT NULL,
    score REAL NOT NULL,
    prev_hash TEXT NOT NULL,
    entry_hash TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS decisions_site ON decisions(site_id, seq);
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only: record a new decision instead'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only: record a new decision instead'); END;
"""

_ENTRY_COLUMNS = "seq, site_id, decision, method, reviewer, decided_at, evidence, bundle_sha256, score, prev_hash, entry_hash"


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _row_to_entry(row: tuple[Any, ...]) -> LedgerEntry:
    seq, site_id, decision, method, reviewer, decided_at, evidence, bundle, score, prev_hash, entry_hash = row
    try:
        evidence_doc = json.loads(evidence)
    except (TypeError, ValueError):
        evidence_doc = {"unparseable": str(evidence)}
    return LedgerEntry(
        seq=seq,
        site_id=site_id,
        decision=decision,
        method=method,
        reviewer=reviewer,
        decided_at=decided_at,
        evidence=evidence_doc,
        bundle_sha256=bundle,
        score=score,
        prev_hash=prev_hash,
        entry_hash=entry_hash,
    )


class Ledger:
    """A run's review ledger on SQLite. Open with :meth:`Ledger.open`; one instance per process."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    @classmethod
    def open(cls, path: Path | str, *, timeout_s: float = 30.0) -> Ledger:
        """Open (creating if absent) the ledger at ``path``.

        Args:
            path: The SQLite file, normally ``run_dir / "review.sqlite"``.
            timeout_s: How long a writer waits for another process's transaction to finish.

        Returns:
            The open ledger.

        Raises:
            LedgerError: If the file is not a SQLite database or has an unknown schema version.
        """
        path = Path(path)
        if not path.parent.is_dir():
            raise LedgerError(
                f"expected the folder of the ledger to exist; got {str(path.parent)!r}. "
                "Point to a run folder made by `fieldtruth scan`."
            )
        try:
            db = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
            db.execute("PRAGMA secure_delete=ON")
            db.execute("PRAGMA foreign_keys=ON")
            mode = db.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise LedgerError(
                    f"expected ledger schema version {SCHEMA_VERSION}; {str(path)!r} has {version!r}. "
                    "Open it with the fieldtruth version that wrote it."
                )
            if version == 0:
                db.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version={SCHEMA_VERSION};COMMIT;")
        except sqlite3.DatabaseError as exc:
            raise LedgerError(
                f"expected a fieldtruth review ledger (SQLite) at {str(path)!r}; opening it failed: {exc}. "
                "Check the path, or move the file aside to start a new ledger."
            ) from exc
        log.debug("opened ledger %s (journal_mode=%s)", path, mode)
        return cls(path, db)

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _immediate(self) -> _Transaction:
        return _Transaction(self._db)

    # ----------------------------------------------------------------------------------------- sites
    def register_sites(self, detections_parquet: Path | str) -> int:
        """Register every detection of a run as a site. Idempotent: known sites are left unchanged.

        Args:
            detections_parquet: The run folder's ``detections.parquet``.

        Returns:
            The number of sites newly registered.

        Raises:
            DetectionsFormatError: If the file is unreadable, lacks a contract column, or repeats a
                ``site_id``.
        """
        rows = _read_sites(Path(detections_parquet))
        now = _utc_now()
        with self._immediate():
            before = self._db.execute("SELECT count(*) FROM sites").fetchone()[0]
            self._db.executemany(
                "INSERT INTO sites (site_id, label, score, bundle_sha256, scene_id, registered_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(site_id) DO NOTHING",
                [(*row, now) for row in rows],
            )
            added = self._db.execute("SELECT count(*) FROM sites").fetchone()[0] - before
        log.info("registered %d new site(s) of %d from %s", added, len(rows), detections_parquet)
        return added

    def sites(self) -> dict[str, dict[str, Any]]:
        """Return site_id -> {label, score, bundle_sha256, scene_id, registered_at}."""
        cur = self._db.execute(
            "SELECT site_id, label, score, bundle_sha256, scene_id, registered_at FROM sites ORDER BY site_id"
        )
        keys = ("label", "score", "bundle_sha256", "scene_id", "registered_at")
        return {row[0]: dict(zip(keys, row[1:], strict=True)) for row in cur}

    # ------------------------------------------------------------------------------------- decisions
    def decide(
        self,
        site_id: str,
        decision: str,
        method: str,
        reviewer: str,
        *,
        note: str = "",
        evidence: Evidence | Mapping[str, Any] | None = None,
    ) -> LedgerEntry:
        """Append a decision about a site. Earlier decisions are kept; the newest one is the status.

        Args:
            site_id: A registered site.
            decision: One of ``confirmed``, ``rejected``, ``uncertain``, ``field_visit``.
            method: One of ``imagery``, ``field``, ``other``.
            reviewer: A pseudonymous id (``rv07``), never a name or e-mail address.
            note: Short free text; no names or identifying details of people.
            evidence: Scenes (ids and hashes) and photo hashes the decision rests on.

        Returns:
            The entry as stored, with its ``seq`` and ``entry_hash``.

        Raises:
            InvalidDecisionError: If an argument breaks the rules above.
            UnknownSiteError: If the site was never registered.
        """
        validate_choice(decision, DECISIONS, "the decision")
        validate_choice(method, METHODS, "the method")
        validate_reviewer(reviewer)
        entry = self._append(site_id, decision, method, reviewer, make_evidence(evidence, note).to_json())
        log.info("site %s: %s by %s (%s), seq %d", site_id, decision, reviewer, method, entry.seq)
        return entry

    def _append(
        self, site_id: str, decision: str, method: str, reviewer: str, evidence_doc: dict[str, Any]
    ) -> LedgerEntry:
        """Chain and insert one validated entry inside ``BEGIN IMMEDIATE`` (writers serialise here)."""
        with self._immediate():
            site = self._db.execute(
                "SELECT bundle_sha256, score FROM sites WHERE site_id = ?", (site_id,)
            ).fetchone()
            if site is None:
                raise UnknownSiteError(
                    f"expected a site registered from this run's detections; got {site_id!r}. "
                    "List sites with `fieldtruth review status RUN`."
                )
            seq, prev_hash = self.head()
            draft = LedgerEntry(
                seq + 1,
                site_id,
                decision,
                method,
                reviewer,
                _utc_now(),
                evidence_doc,
                site[0],
                float(site[1]),
                prev_hash,
                "",
            )
            entry = LedgerEntry(**{**draft.__dict__, "entry_hash": draft.computed_hash()})
            self._db.execute(
                f"INSERT INTO decisions ({_ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.seq,
                    entry.site_id,
                    entry.decision,
                    entry.method,
                    entry.reviewer,
                    entry.decided_at,
                    entry.canonical_evidence(),
                    entry.bundle_sha256,
                    entry.score,
                    entry.prev_hash,
                    entry.entry_hash,
                ),
            )
        return entry

    def entries(self, site_id: str | None = None) -> Iterator[LedgerEntry]:
        """Yield decisions in ``seq`` order, all of them or those of one site."""
        if site_id is None:
            cur = self._db.execute(f"SELECT {_ENTRY_COLUMNS} FROM decisions ORDER BY seq")
        else:
            cur = self._db.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM decisions WHERE site_id = ? ORDER BY seq", (site_id,)
            )
        for row in cur:
            yield _row_to_entry(row)

    def statuses(self) -> dict[str, str]:
        """Return site_id -> the newest decision about it, or ``unverified`` if there is none."""
        cur = self._db.execute(
            "SELECT s.site_id, d.decision FROM sites AS s LEFT JOIN decisions AS d "
            "ON d.seq = (SELECT max(seq) FROM decisions WHERE site_id = s.site_id) ORDER BY s.site_id"
        )
        return {site_id: decision or UNVERIFIED for site_id, decision in cur}

    def counts(self) -> dict[str, int]:
        """Return status -> number of sites, for every status (zeros included)."""
        counts = dict.fromkeys(STATUSES, 0)
        for status in self.statuses().values():
            counts[status] += 1
        return counts

    def head(self) -> tuple[int, str]:
        """Return ``(seq, entry_hash)`` of the newest entry, ``(0, GENESIS_HASH)`` when empty."""
        row = self._db.execute("SELECT seq, entry_hash FROM decisions ORDER BY seq DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, GENESIS_HASH)

    def verify(self) -> ChainCheck:
        """Walk the chain in ``seq`` order and check every link and every entry's hash.

        Returns:
            A :class:`ChainCheck`; ``first_bad_seq`` names the first entry that was edited, or that
            follows a deleted, inserted or reordered one. Call ``raise_for_error()`` to raise instead.
        """
        prev_hash, expected_seq, count = GENESIS_HASH, 1, 0
        for entry in self.entries():
            count += 1
            reason = ""
            if entry.seq != expected_seq:
                reason = f"expected seq {expected_seq} next; entries are missing or were renumbered"
            elif entry.prev_hash != prev_hash:
                reason = (
                    f"its prev_hash does not match the entry_hash of seq {expected_seq - 1} "
                    "(an entry before it was deleted, inserted, reordered or rehashed)"
                )
            elif entry.computed_hash() != entry.entry_hash:
                reason = "its content does not match its entry_hash (the entry was edited)"
            if reason:
                return ChainCheck(False, count, prev_hash, entry.seq, entry.site_id, reason)
            prev_hash, expected_seq = entry.entry_hash, expected_seq + 1
        return ChainCheck(True, count, prev_hash)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _read_sites(path: Path) -> list[tuple[str, str, float, str, str]]:
    """Read the site columns of ``detections.parquet`` with pyarrow (no geometry needed)."""
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
        if row[0] is None or any(v is None for v in row):
            raise DetectionsFormatError(f"expected no empty values in {list(SITE_COLUMNS)}; got row {row!r}.")
        if row[0] in seen:
            raise DetectionsFormatError(
                f"expected unique site_id values in {str(path)!r}; {row[0]!r} appears twice. "
                "Site ids must be stable and unique per run."
            )
        seen.add(row[0])
    return [(str(a), str(b), float(c), str(d), str(e)) for a, b, c, d, e in rows]
