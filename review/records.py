"""Values of the decision ledger: decisions, evidence, entries, and the hash that chains them.

Everything here is pure (no SQLite) so the rules can be tested and reused by importers of field
decisions. An entry's hash is the SHA-256 of a canonical JSON document of all its fields, including the
hash of the entry before it, so editing, deleting, inserting or reordering entries breaks the chain.

The evidence (scene references, photo hashes, the note) enters the hash only through a salted SHA-256
commitment (``evidence_sha256``). The evidence text and its salt can therefore be erased (right to
erasure) while the chain still verifies; the random salt keeps the remaining digest from revealing a
short note by guessing. An erased entry is accepted only when a tombstone for its site follows it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fieldtruth.review.errors import InvalidDecisionError, LedgerTamperedError

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

CHAIN_VERSION = 2
"""Bumped whenever the canonical document below changes shape."""

MAX_NOTE_CHARS = 2000

_REVIEWER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,31}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class SceneRef:
    """A scene a reviewer looked at: its id and, where known, the SHA-256 of the file(s) seen."""

    id: str
    sha256: str | None = None


@dataclass(frozen=True)
class Evidence:
    """What a decision rests on. Hashes only: photos themselves never enter the ledger.

    Attributes:
        scenes: Scenes looked at (id and optional sha256).
        photos: SHA-256 hex digests of field photos kept elsewhere.
        note: Free text. Keep it free of names and anything that identifies a person.
    """

    scenes: tuple[SceneRef, ...] = ()
    photos: tuple[str, ...] = ()
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the plain JSON document stored in the ledger."""
        return {
            "scenes": [{"id": s.id, "sha256": s.sha256} for s in self.scenes],
            "photos": list(self.photos),
            "note": self.note,
        }


@dataclass(frozen=True)
class LedgerEntry:
    """One appended decision, exactly as stored and hashed."""

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
    score: float
    prev_hash: str
    entry_hash: str

    @property
    def erased(self) -> bool:
        """True when the evidence (and its salt) of this entry was erased."""
        return self.evidence is None or self.evidence_salt is None

    def evidence_matches(self) -> bool:
        """Return True when the stored evidence matches its commitment (False if erased)."""
        if self.erased:
            return False
        return commit_evidence(self.evidence or {}, self.evidence_salt or "") == self.evidence_sha256

    def canonical(self) -> bytes:
        """Return the canonical JSON bytes this entry's hash is computed over."""
        return canonical_bytes(
            seq=self.seq,
            site_id=self.site_id,
            decision=self.decision,
            method=self.method,
            reviewer=self.reviewer,
            decided_at=self.decided_at,
            evidence_sha256=self.evidence_sha256,
            bundle_sha256=self.bundle_sha256,
            score=self.score,
            prev_hash=self.prev_hash,
        )

    def canonical_evidence(self) -> str | None:
        """Return the evidence as the canonical JSON text stored in the ledger (None when erased)."""
        return None if self.evidence is None else evidence_text(self.evidence)

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
        first_bad_seq: ``seq`` of the first entry that fails, or None.
        first_bad_site: ``site_id`` of that entry, or None.
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
            raise LedgerTamperedError(
                f"expected an intact decision chain; entry seq={self.first_bad_seq} "
                f"(site {self.first_bad_site!r}) fails: {self.reason}. Restore review.sqlite from a "
                "backup and investigate who changed it; do not act on its statuses meanwhile."
            )


def canonical_bytes(
    *,
    seq: int,
    site_id: str,
    decision: str,
    method: str,
    reviewer: str,
    decided_at: str,
    evidence_sha256: str,
    bundle_sha256: str,
    score: float,
    prev_hash: str,
) -> bytes:
    """Serialise an entry's fields (not its own hash) as canonical JSON.

    Keys sorted, no whitespace, UTF-8, floats as Python's shortest round-trip repr. The evidence is
    represented by its commitment only, so erasing it leaves the entry's hash unchanged.
    """
    doc = {
        "v": CHAIN_VERSION,
        "seq": int(seq),
        "site_id": site_id,
        "decision": decision,
        "method": method,
        "reviewer": reviewer,
        "decided_at": decided_at,
        "evidence_sha256": evidence_sha256,
        "bundle_sha256": bundle_sha256,
        "score": float(score),
        "prev_hash": prev_hash,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def evidence_text(evidence: Mapping[str, Any]) -> str:
    """Return evidence as canonical JSON text (sorted keys, no whitespace)."""
    return json.dumps(evidence, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def new_salt() -> str:
    """Return a fresh random salt (32 hex characters) for an evidence commitment."""
    return secrets.token_hex(16)


def commit_evidence(evidence: Mapping[str, Any], salt: str) -> str:
    """Return the salted SHA-256 commitment of ``evidence`` that an entry's hash covers."""
    return hashlib.sha256(f"{salt}\n{evidence_text(evidence)}".encode()).hexdigest()


def validate_choice(value: object, allowed: Sequence[str], what: str) -> str:
    """Return ``value`` if it is one of ``allowed``; raise :class:`InvalidDecisionError` otherwise."""
    if not isinstance(value, str) or value not in allowed:
        raise InvalidDecisionError(
            f"expected {what} to be one of {', '.join(allowed)}; got {value!r}. Use one of those words."
        )
    return value


def validate_reviewer(reviewer: object) -> str:
    """Check a pseudonymous reviewer id: 2-32 characters of letters, digits, ``.``, ``_``, ``-``.

    Names, e-mail addresses and anything with spaces are refused: the ledger must not identify people.
    """
    if not isinstance(reviewer, str) or not _REVIEWER_RE.fullmatch(reviewer):
        raise InvalidDecisionError(
            "expected a pseudonymous reviewer id (2-32 characters: letters, digits, '.', '_', '-'; "
            f"no spaces, no e-mail address); got {reviewer!r}. Use a short code such as 'rv07'."
        )
    return reviewer


def _validate_sha256(value: object, what: str) -> str:
    if not isinstance(value, str) or not _SHA256_RE.fullmatch(value):
        raise InvalidDecisionError(
            f"expected {what} to be a SHA-256 hex digest (64 lowercase hex characters); got {value!r}. "
            "Compute it with `sha256sum FILE`."
        )
    return value


def _scene_ref(item: object) -> SceneRef:
    if isinstance(item, SceneRef):
        ref = item
    elif isinstance(item, str):
        ref = SceneRef(id=item)
    elif isinstance(item, Mapping) and set(item) <= {"id", "sha256"}:
        ref = SceneRef(id=item.get("id"), sha256=item.get("sha256"))  # type: ignore[arg-type]
    else:
        raise InvalidDecisionError(
            f"expected a scene reference (a scene id, or {{'id': ..., 'sha256': ...}}); got {item!r}."
        )
    if not isinstance(ref.id, str) or not ref.id.strip():
        raise InvalidDecisionError(f"expected a non-empty scene id; got {ref.id!r}.")
    if ref.sha256 is not None:
        _validate_sha256(ref.sha256, f"the sha256 of scene {ref.id!r}")
    return ref


def make_evidence(evidence: Evidence | Mapping[str, Any] | None, note: str = "") -> Evidence:
    """Validate and normalise evidence given as an :class:`Evidence` or a plain mapping.

    Args:
        evidence: ``None``, an :class:`Evidence`, or a mapping with optional keys ``scenes`` (ids or
            ``{"id", "sha256"}`` mappings), ``photos`` (SHA-256 hex digests) and ``note``.
        note: A note given separately; it must not conflict with ``evidence["note"]``.

    Returns:
        The validated evidence.

    Raises:
        InvalidDecisionError: If a key is unknown, a hash is malformed, or the note is too long.
    """
    if evidence is None:
        evidence = Evidence()
    elif not isinstance(evidence, Evidence):
        if not isinstance(evidence, Mapping) or not set(evidence) <= {"scenes", "photos", "note"}:
            raise InvalidDecisionError(
                "expected evidence with keys among 'scenes', 'photos', 'note'; "
                f"got {evidence!r}. Remove the other keys."
            )
        scenes = evidence.get("scenes") or ()
        photos = evidence.get("photos") or ()
        if isinstance(scenes, (str, bytes)) or isinstance(photos, (str, bytes)):
            raise InvalidDecisionError(
                f"expected lists for evidence 'scenes' and 'photos'; got {scenes!r} and {photos!r}."
            )
        evidence = Evidence(
            scenes=tuple(_scene_ref(s) for s in scenes),
            photos=tuple(_validate_sha256(p, "a photo hash") for p in photos),
            note=evidence.get("note") or "",
        )
    else:
        evidence = Evidence(
            scenes=tuple(_scene_ref(s) for s in evidence.scenes),
            photos=tuple(_validate_sha256(p, "a photo hash") for p in evidence.photos),
            note=evidence.note,
        )
    if note and evidence.note and note != evidence.note:
        raise InvalidDecisionError(
            f"got two different notes, {note!r} and {evidence.note!r}; give the note once."
        )
    text = note or evidence.note
    if not isinstance(text, str) or len(text) > MAX_NOTE_CHARS:
        raise InvalidDecisionError(
            f"expected a note of at most {MAX_NOTE_CHARS} characters; got {str(text)[:40]!r}... "
            "Keep notes short and keep photos and documents outside the ledger (give their hashes)."
        )
    return Evidence(scenes=evidence.scenes, photos=evidence.photos, note=text)
