"""Values of the decision ledger: evidence, site facts, entries, and the hash that chains them.

Everything here is pure (no SQLite) so the rules can be tested and reused by importers of field
decisions. An entry's hash is the SHA-256 of a canonical JSON document of all its fields, including the
hash of the entry before it, so editing, deleting, inserting or reordering entries breaks the chain.

Two things enter the hash only through salted SHA-256 commitments, so that they can be erased (right to
erasure) while the chain still verifies, and the random salt keeps a remaining digest from being
reversed by guessing:

- the evidence (scene references, photo hashes, the note, the visit position a person chose to record),
  committed as ``evidence_sha256``;
- the site facts the decision was made on (class, score, position of the lead), committed as
  ``site_sha256`` (chain version 3). ``export actionable`` and ``review verify`` compare the run's
  detections with them, so a lead moved after it was confirmed is caught.

An erased entry is accepted only when a tombstone for its site follows it. Chain version 2 entries (no
site facts, the score in clear, no visit time) still verify with the version 2 document.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fieldtruth.review.errors import LedgerTamperedError

log = logging.getLogger(__name__)

UNVERIFIED = "unverified"
"""Status of a site no one has decided on yet. Nothing unverified is actionable."""

DECISIONS: tuple[str, ...] = ("confirmed", "rejected", "uncertain", "field_visit")
"""What a reviewer may decide about a site (``field_visit``: someone must go and look)."""

STATUSES: tuple[str, ...] = (UNVERIFIED, *DECISIONS)
"""Every status a site can have, ``unverified`` first."""

METHODS: tuple[str, ...] = ("imagery", "field", "other")
"""How the reviewer reached the decision."""

GENESIS_HASH = "0" * 64
"""``prev_hash`` of the first entry of every chain."""

TOMBSTONE = "erased"
"""``decision`` of the entry appended when a site's data is erased: it says when and why, not what."""

ENTRY_KINDS: tuple[str, ...] = (*DECISIONS, TOMBSTONE)
"""Every value the ``decision`` column of the chain may hold."""

CHAIN_VERSION = 3
"""Version of the canonical document new entries are hashed with (2: before site facts and visit times)."""

CHAIN_VERSIONS: tuple[int, ...] = (2, 3)
"""Versions :meth:`LedgerEntry.canonical` can rebuild, so older ledgers still verify."""

MAX_NOTE_CHARS = 2000


@dataclass(frozen=True)
class SceneRef:
    """A scene a reviewer looked at: its id and, where known, the SHA-256 of the file(s) seen."""

    id: str
    sha256: str | None = None


@dataclass(frozen=True)
class VisitPosition:
    """Where the person stood when they recorded a field decision, as they chose to record it.

    Personal data about the field worker: it is kept inside the salted, erasable evidence only.

    Attributes:
        lat: Latitude in degrees (WGS 84), -90 to 90.
        lon: Longitude in degrees (WGS 84), -180 to 180.
        accuracy_m: Horizontal accuracy in metres as the device reported it, or None.
    """

    lat: float
    lon: float
    accuracy_m: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the plain JSON document stored inside the evidence."""
        return {"lat": self.lat, "lon": self.lon, "accuracy_m": self.accuracy_m}


@dataclass(frozen=True)
class Evidence:
    """What a decision rests on. Hashes only: photos themselves never enter the ledger.

    Attributes:
        scenes: Scenes looked at (id and optional sha256).
        photos: SHA-256 hex digests of field photos kept elsewhere.
        note: Free text. Keep it free of names and anything that identifies a person.
        position: Where the person was when they decided, only when they chose to record it.
    """

    scenes: tuple[SceneRef, ...] = ()
    photos: tuple[str, ...] = ()
    note: str = ""
    position: VisitPosition | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the plain JSON document stored in the ledger (``position`` only when recorded)."""
        doc: dict[str, Any] = {
            "scenes": [{"id": s.id, "sha256": s.sha256} for s in self.scenes],
            "photos": list(self.photos),
            "note": self.note,
        }
        if self.position is not None:
            doc["position"] = self.position.to_json()
        return doc


@dataclass(frozen=True)
class CommittedFacts:
    """The facts about a lead that a decision was made on, committed into the chain (version 3).

    A subset of what the run's detections say about the site now
    (:class:`~fieldtruth.review.sitedata.SiteFacts`), frozen when the decision was made so that the two
    can be compared (:mod:`fieldtruth.review.vouch`).

    Attributes:
        label: The detector's class of the lead.
        score: The detector's score at the time of the decision.
        lon: Longitude of the lead's point (EPSG:4326), None when the run recorded no position.
        lat: Latitude of the lead's point (EPSG:4326), None when the run recorded no position.
    """

    label: str
    score: float
    lon: float | None
    lat: float | None

    def to_json(self) -> dict[str, Any]:
        """Return the plain JSON document stored (and committed) with the entry."""
        return {"label": self.label, "score": self.score, "lon": self.lon, "lat": self.lat}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> CommittedFacts:
        """Rebuild facts from :meth:`to_json` output."""
        lon, lat = doc.get("lon"), doc.get("lat")
        return cls(
            str(doc.get("label")),
            float(doc.get("score", float("nan"))),
            None if lon is None else float(lon),
            None if lat is None else float(lat),
        )


@dataclass(frozen=True)
class LedgerEntry:
    """One appended decision or tombstone, exactly as stored and hashed.

    Attributes:
        decided_at: When the ledger recorded the entry (UTC, ISO 8601, set by the ledger).
        visited_at: When the person says they visited the site or made the decision (UTC, ISO 8601), as
            they gave it; None when not given (then ``decided_at`` is the only time). Chain version 3.
        evidence: The evidence document, or None once erased.
        score: The score in clear (chain version 2 entries only; version 3 keeps it in ``site_facts``).
        v: The chain version this entry was hashed with.
        site_facts: :meth:`CommittedFacts.to_json` of the lead when decided, or None once erased (and for
            tombstones and version 2 entries).
        site_sha256: The salted commitment of ``site_facts`` the hash covers (None: no facts committed).
    """

    seq: int
    site_id: str
    decision: str
    method: str
    reviewer: str
    decided_at: str
    evidence: dict[str, Any] | None = field(hash=False)
    evidence_salt: str | None
    evidence_sha256: str
    bundle_sha256: str
    score: float | None
    prev_hash: str
    entry_hash: str
    v: int = CHAIN_VERSION
    visited_at: str | None = None
    site_facts: dict[str, Any] | None = field(default=None, hash=False)
    site_salt: str | None = None
    site_sha256: str | None = None

    @property
    def erased(self) -> bool:
        """True when the evidence (and its salt) of this entry was erased."""
        return self.evidence is None or self.evidence_salt is None

    @property
    def facts_erased(self) -> bool:
        """True when site facts were committed but their text or salt is gone."""
        return self.site_sha256 is not None and (self.site_facts is None or self.site_salt is None)

    @property
    def facts(self) -> CommittedFacts | None:
        """The committed site facts (None for version 2 entries, tombstones, and erased entries)."""
        return None if self.site_facts is None else CommittedFacts.from_json(self.site_facts)

    def evidence_matches(self) -> bool:
        """Return True when the stored evidence matches its commitment (False if erased)."""
        if self.erased:
            return False
        return commit(self.evidence or {}, self.evidence_salt or "") == self.evidence_sha256

    def facts_match(self) -> bool:
        """Return True when the stored site facts match their commitment (True when none were committed)."""
        if self.site_sha256 is None:
            return self.site_facts is None
        if self.facts_erased:
            return False
        return commit(self.site_facts or {}, self.site_salt or "") == self.site_sha256

    def canonical(self) -> bytes:
        """Return the canonical JSON bytes this entry's hash is computed over (for its version ``v``).

        Raises:
            LedgerTamperedError: If ``v`` is not a chain version this fieldtruth knows.
        """
        doc: dict[str, Any] = {
            "v": self.v,
            "seq": int(self.seq),
            "site_id": self.site_id,
            "decision": self.decision,
            "method": self.method,
            "reviewer": self.reviewer,
            "decided_at": self.decided_at,
            "evidence_sha256": self.evidence_sha256,
            "bundle_sha256": self.bundle_sha256,
            "prev_hash": self.prev_hash,
        }
        if self.v == 2:
            doc["score"] = float(self.score if self.score is not None else float("nan"))
        elif self.v == 3:
            doc.update(visited_at=self.visited_at, site_sha256=self.site_sha256)
        else:
            raise LedgerTamperedError(
                f"expected chain version {' or '.join(map(str, CHAIN_VERSIONS))}; entry seq={self.seq} has "
                f"{self.v!r}. Open the ledger with the fieldtruth version that wrote it."
            )
        return json.dumps(
            doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()

    @classmethod
    def sealed(
        cls,
        *,
        seq: int,
        site_id: str,
        decision: str,
        method: str,
        reviewer: str,
        decided_at: str,
        evidence: dict[str, Any],
        bundle_sha256: str,
        prev_hash: str,
        visited_at: str | None,
        facts: CommittedFacts | None,
    ) -> LedgerEntry:
        """Return a new chain version 3 entry: fresh salts, commitments, and its own hash."""
        salt, site_doc = new_salt(), None if facts is None else facts.to_json()
        site_salt = None if site_doc is None else new_salt()
        draft = cls(
            seq=seq,
            site_id=site_id,
            decision=decision,
            method=method,
            reviewer=reviewer,
            decided_at=decided_at,
            evidence=evidence,
            evidence_salt=salt,
            evidence_sha256=commit(evidence, salt),
            bundle_sha256=bundle_sha256,
            score=None,
            prev_hash=prev_hash,
            entry_hash="",
            v=CHAIN_VERSION,
            visited_at=visited_at,
            site_facts=site_doc,
            site_salt=site_salt,
            site_sha256=None if site_doc is None else commit(site_doc, site_salt or ""),
        )
        return cls(**{**draft.__dict__, "entry_hash": draft.computed_hash()})

    def canonical_evidence(self) -> str | None:
        """Return the evidence as the canonical JSON text stored in the ledger (None when erased)."""
        return None if self.evidence is None else canonical_text(self.evidence)

    def computed_hash(self) -> str:
        """Return the SHA-256 hex digest the entry *should* carry."""
        return hashlib.sha256(self.canonical()).hexdigest()


@dataclass(frozen=True)
class ChainCheck:
    """Result of :meth:`Ledger.verify`.

    Attributes:
        ok: True when every entry verifies.
        entries: Number of entries read.
        head_hash: ``entry_hash`` of the last entry (or the genesis hash); keep a copy outside the
            file to detect truncation of the newest entries, which no in-file check can see.
        first_bad_seq: ``seq`` of the first entry that fails, or None (also when the sites table,
            not an entry, disagrees with the chain).
        first_bad_site: ``site_id`` of that entry (or site), or None.
        reason: Why it fails ("" when ok).
    """

    ok: bool
    entries: int
    head_hash: str
    first_bad_seq: int | None = None
    first_bad_site: str | None = None
    reason: str = ""

    def raise_for_error(self) -> None:
        """Raise :class:`LedgerTamperedError` naming the first bad entry, if the chain does not verify."""
        if not self.ok:
            where = f"entry seq={self.first_bad_seq}" if self.first_bad_seq is not None else "the sites table"
            raise LedgerTamperedError(
                f"expected an intact decision chain; {where} (site {self.first_bad_site!r}) fails: "
                f"{self.reason}. Restore review.sqlite from a backup and investigate who changed it; do not "
                "act on its statuses meanwhile."
            )


def canonical_text(doc: Mapping[str, Any]) -> str:
    """Return a JSON document as canonical text (sorted keys, no whitespace)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


evidence_text = canonical_text
"""The canonical text of an evidence document (the name importers compare evidence with)."""


def commit(doc: Mapping[str, Any], salt: str) -> str:
    """Return the salted SHA-256 commitment of a JSON document that an entry's hash covers."""
    return hashlib.sha256(f"{salt}\n{canonical_text(doc)}".encode()).hexdigest()


commit_evidence = commit
"""The salted commitment of an evidence document (kept under its version 2 name)."""


def new_salt() -> str:
    """Return a fresh random salt (32 hex characters) for a commitment."""
    return secrets.token_hex(16)
