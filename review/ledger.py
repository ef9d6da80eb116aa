"""The review ledger: sites of a run and an append-only, hash-chained log of human decisions.

One SQLite file per run folder (``review.sqlite``). Sites are registered from ``detections.parquet``
and start ``unverified``. Decisions are only ever appended: a later decision supersedes an earlier one
without editing it. Triggers refuse ``UPDATE`` and ``DELETE`` on decisions (except erasing evidence),
and every entry carries the SHA-256 of a canonical JSON of itself plus the previous entry's hash, so
:meth:`Ledger.verify` detects (and names the first of) any edited, deleted, inserted or reordered entry,
even one made behind the triggers' back. Appends run inside ``BEGIN IMMEDIATE`` so concurrent writers
serialise and lose nothing.

The file uses a rollback journal (``journal_mode=DELETE``, not WAL) and ``secure_delete=ON`` so freed
pages are overwritten with zeros rather than left readable; :meth:`Ledger.erase_site` also VACUUMs.

Example:
    >>> ledger = Ledger.of_run(run_dir)  # doctest: +SKIP
    >>> ledger.decide("kiln-0001", "confirmed", "imagery", "rv07", note="chimney visible")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from fieldtruth.review.chain import walk
from fieldtruth.review.errors import InvalidDecisionError, LedgerError, UnknownSiteError
from fieldtruth.review.records import (
    GENESIS_HASH,
    STATUSES,
    TOMBSTONE,
    UNVERIFIED,
    ChainCheck,
    CommittedFacts,
    Evidence,
    LedgerEntry,
)
from fieldtruth.review.rules import Decision, make_evidence, validate_reviewer, validated
from fieldtruth.review.schema import (
    ENTRY_COLUMNS,
    SITE_COLUMNS,
    ensure_schema,
    entry_from_row,
    insert_entry,
    open_connection,
    read_sites,
)
from fieldtruth.runfiles import RunFiles

__all__ = ["SITE_COLUMNS", "Decision", "Ledger", "RegisteredSite", "validated"]

log = logging.getLogger(__name__)

_LIVE = (
    f"NOT EXISTS (SELECT 1 FROM decisions AS t WHERE t.site_id = s.site_id AND t.decision = '{TOMBSTONE}')"
)
"""SQL: site ``s`` has no tombstone. Erasure is what the chain says, never the sites table's ``erased_at``."""


class RegisteredSite(NamedTuple):
    """A site as the ledger registered it from the run's detections (what its decisions commit to).

    Attributes:
        label: The detector's class of the lead.
        score: The detector's score.
        lon: Longitude of the lead's point (EPSG:4326), None when the run recorded no position.
        lat: Latitude of the lead's point, None when the run recorded no position.
        bundle_sha256: The detector bundle's sha256.
        scene_id: The scene(s) it was found in.
        registered_at: When the ledger registered it (UTC, ISO 8601).
    """

    label: str
    score: float
    lon: float | None
    lat: float | None
    bundle_sha256: str
    scene_id: str
    registered_at: str


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")




class Ledger:
    """A run's review ledger on SQLite. Open with :meth:`Ledger.open` or :meth:`Ledger.of_run`; one
    instance per process."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    @classmethod
    def open(cls, path: Path | str, *, timeout_s: float = 30.0) -> Ledger:
        """Open (creating if absent) the ledger at ``path``.

        Args:
            path: The SQLite file, normally ``run_dir / "review.sqlite"``.
            timeout_s: How long a writer waits for another process's transaction to finish.

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
            db = open_connection(path, timeout_s)
            ensure_schema(db, path)
        except sqlite3.DatabaseError as exc:
            raise LedgerError(
                f"expected a fieldtruth review ledger (SQLite) at {str(path)!r}; opening it failed: {exc}. "
                "Check the path, or move the file aside to start a new ledger."
            ) from exc
        return cls(path, db)

    @classmethod
    def of_run(cls, run_dir: Path | str, *, register: bool = True) -> Ledger:
        """Open a run folder's ledger, with the run's detections registered as sites when ``register``.

        Raises:
            LedgerError: as :meth:`open`.
            DetectionsFormatError: as :meth:`register_sites` (a missing detections file included).
        """
        files = RunFiles(Path(run_dir))
        ledger = cls.open(files.ledger)
        if register:
            try:
                ledger.register_sites(files.detections)
            except BaseException:
                ledger.close()
                raise
        return ledger

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

    def register_sites(self, detections_parquet: Path | str) -> int:
        """Register every detection of a run as a site, with its position. Idempotent; erased sites stay
        erased (a site registered by an older version gets its position on the next registration).

        Returns:
            The number of sites newly registered.

        Raises:
            DetectionsFormatError: If the file is unreadable, lacks a contract column, or repeats a site.
        """
        rows = read_sites(Path(detections_parquet))
        now = _utc_now()
        with self._immediate():
            before = self._db.execute("SELECT count(*) FROM sites").fetchone()[0]
            self._db.executemany(
                "INSERT INTO sites (site_id, label, score, bundle_sha256, scene_id, lon, lat, registered_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(site_id) DO UPDATE SET lon = excluded.lon, "
                "lat = excluded.lat WHERE sites.lon IS NULL AND sites.erased_at IS NULL",
                [(r.site_id, r.label, r.score, r.bundle_sha256, r.scene_id, r.lon, r.lat, now) for r in rows],
            )
            added = self._db.execute("SELECT count(*) FROM sites").fetchone()[0] - before
        log.info("registered %d new site(s) of %d from %s", added, len(rows), detections_parquet)
        return added

    def sites(self) -> dict[str, RegisteredSite]:
        """Return site_id -> what the ledger registered about it (erased sites left out: a site is erased
        when the chain holds its tombstone)."""
        keys = RegisteredSite._fields
        cur = self._db.execute(
            f"SELECT site_id, {', '.join(keys)} FROM sites AS s WHERE {_LIVE} ORDER BY site_id"
        )
        return {row[0]: RegisteredSite(*row[1:]) for row in cur}

    def erased_sites(self) -> dict[str, str]:
        """Return site_id -> when it was erased (its tombstone's time), for every erased site."""
        cur = self._db.execute(
            "SELECT site_id, max(decided_at) FROM decisions WHERE decision = ? GROUP BY site_id", (TOMBSTONE,)
        )
        return dict(cur.fetchall())

    def decide(
        self,
        site_id: str,
        decision: str,
        method: str,
        reviewer: str,
        *,
        note: str = "",
        evidence: Evidence | Mapping[str, Any] | None = None,
        visited_at: object = None,
    ) -> LedgerEntry:
        """Append a decision about a site. Earlier decisions are kept; the newest one is the status.

        Args:
            site_id: A registered site.
            decision: One of ``confirmed``, ``rejected``, ``uncertain``, ``field_visit``.
            method: One of ``imagery``, ``field``, ``other``.
            reviewer: A pseudonymous id (``rv07``), never a name or e-mail address; stored canonical.
            note: Short free text; no names or identifying details of people.
            evidence: Scenes (ids and hashes), photo hashes, and the visit position (only when the
                person chose to record it) the decision rests on.
            visited_at: When the person visited the site or decided, as they give it (ISO 8601 with a
                time zone, a datetime, or a date); None when not given. The ledger adds its own time.

        Raises:
            InvalidDecisionError: If an argument breaks the rules above.
            UnknownSiteError: If the site was never registered or was erased.
        """
        one = validated(
            site_id, decision, method, reviewer, note=note, evidence=evidence, visited_at=visited_at
        )
        return self.decide_many([one])[0]

    def decide_many(self, decisions: Iterable[Decision]) -> list[LedgerEntry]:
        """Append validated decisions in ONE transaction: all are recorded, or none (on any error)."""
        with self._immediate():
            entries = [
                self._insert(d.site_id, d.decision, d.method, d.reviewer, d.evidence, d.visited_at)
                for d in decisions
            ]
        for e in entries:
            log.info("site %s: %s by %s (%s), seq %d", e.site_id, e.decision, e.reviewer, e.method, e.seq)
        return entries

    def _insert(
        self,
        site_id: str,
        decision: str,
        method: str,
        reviewer: str,
        evidence: dict[str, Any],
        visited_at: str | None = None,
    ) -> LedgerEntry:
        """Chain and insert one validated entry; the caller holds a ``BEGIN IMMEDIATE`` transaction.

        A decision commits to the site's facts as registered (class, score, position); a tombstone to none.
        """
        site = self._db.execute(
            f"SELECT bundle_sha256, label, score, lon, lat FROM sites AS s WHERE site_id = ? AND {_LIVE}",
            (site_id,),
        ).fetchone()
        if site is None:
            raise UnknownSiteError(
                f"expected a site registered from this run's detections (and not erased); got {site_id!r}. "
                "List sites with `fieldtruth review queue RUN`."
            )
        bundle, label, score, lon, lat = site
        seq, prev_hash = self.head()
        entry = LedgerEntry.sealed(
            seq=seq + 1,
            site_id=site_id,
            decision=decision,
            method=method,
            reviewer=reviewer,
            decided_at=_utc_now(),
            evidence=evidence,
            bundle_sha256=bundle,
            prev_hash=prev_hash,
            visited_at=visited_at,
            facts=None if decision == TOMBSTONE else CommittedFacts(str(label), float(score), lon, lat),
        )
        insert_entry(self._db, entry)
        return entry

    def erase_site(self, site_id: str, reason: str, by: str) -> LedgerEntry:
        """Erase what the ledger holds about a site and append a tombstone saying when and why, not what.

        The decisions stay in the chain (who decided what, when); their evidence, site facts and salts
        are set to NULL, the site's class, score, position and scene are blanked, a tombstone entry is
        appended, and the file is VACUUMed so no freed page keeps the old bytes.

        Raises:
            InvalidDecisionError: If ``by`` is not a pseudonymous id or the reason is empty or too long.
            UnknownSiteError: If the site is unknown or already erased.
        """
        by = validate_reviewer(by)
        tomb = make_evidence(None, reason).to_json()
        if not tomb["note"].strip():
            raise InvalidDecisionError(
                f"expected a reason for the erasure; got {reason!r}. Say why, e.g. 'owner request'."
            )
        with self._immediate():
            entry = self._insert(site_id, TOMBSTONE, "other", by, tomb)
            self._db.execute(
                "UPDATE decisions SET evidence = NULL, evidence_salt = NULL, site_facts = NULL, "
                "site_salt = NULL WHERE site_id = ? AND seq < ?",
                (site_id, entry.seq),
            )
            self._db.execute(
                "UPDATE sites SET label = NULL, score = NULL, lon = NULL, lat = NULL, scene_id = NULL, "
                "erased_at = ? WHERE site_id = ?",
                (entry.decided_at, site_id),
            )
        self._db.execute("VACUUM")
        log.info("erased what the ledger held about site %s (tombstone seq %d)", site_id, entry.seq)
        return entry

    def entries(self, site_id: str | None = None) -> Iterator[LedgerEntry]:
        """Yield entries (decisions and tombstones) in ``seq`` order, all of them or those of one site."""
        if site_id is None:
            cur = self._db.execute(f"SELECT {ENTRY_COLUMNS} FROM decisions ORDER BY seq")
        else:
            cur = self._db.execute(
                f"SELECT {ENTRY_COLUMNS} FROM decisions WHERE site_id = ? ORDER BY seq", (site_id,)
            )
        for row in cur.fetchall():
            yield entry_from_row(row)

    def statuses(self) -> dict[str, str]:
        """Return site_id -> the newest decision about it, or ``unverified`` (erased sites left out)."""
        cur = self._db.execute(
            "SELECT s.site_id, d.decision FROM sites AS s LEFT JOIN decisions AS d "
            "ON d.seq = (SELECT max(seq) FROM decisions WHERE site_id = s.site_id) "
            f"WHERE {_LIVE} ORDER BY s.site_id"
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
        """Walk the chain in ``seq`` order and check every link, entry hash and commitment, then check that
        the sites table agrees with the chain about which sites are erased (and keeps nothing of them).

        Returns:
            A :class:`ChainCheck`; ``first_bad_seq`` names the first entry that was edited, or that
            follows a deleted, inserted or reordered one. Call ``raise_for_error()`` to raise instead.
        """
        check = walk(self.entries())
        if not check.ok:
            return check
        tombstoned = set(self.erased_sites())
        rows = self._db.execute(
            "SELECT site_id, erased_at, label, score, lon, lat, scene_id FROM sites"
        ).fetchall()
        for site_id, erased_at, *kept in sorted(rows):
            if erased_at is not None and site_id not in tombstoned:
                reason = "the sites table marks it erased but no tombstone says so (sites table edited)"
            elif site_id in tombstoned and (erased_at is None or any(v is not None for v in kept)):
                reason = "it has a tombstone but the sites table still holds its facts (erasure undone)"
            else:
                continue
            return ChainCheck(False, check.entries, check.head_hash, None, site_id, reason)
        return check


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
