"""Walking the decision chain: every link, every entry hash, every evidence and site-facts commitment."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fieldtruth.review.errors import LedgerTamperedError
from fieldtruth.review.records import GENESIS_HASH, TOMBSTONE, ChainCheck, LedgerEntry


def _content_problem(entry: LedgerEntry, erased_later: bool) -> str:
    """Return why an entry's salted parts (evidence, site facts) break the rules, or ""."""
    if entry.decision == TOMBSTONE:
        if entry.erased:
            return "it is a tombstone whose reason was deleted (tombstones are never erased)"
        if entry.site_sha256 is not None or entry.site_facts is not None:
            return "it is a tombstone that carries site facts (a tombstone says when and why, not what)"
    elif entry.v >= 3 and entry.site_sha256 is None:
        return "it is a version 3 decision without committed site facts"
    parts = [
        ("evidence", entry.erased, entry.evidence_matches),
        ("site facts", entry.facts_erased, entry.facts_match),
    ]
    for name, gone, matches in parts:
        if gone and not erased_later:
            return f"its {name} is gone but no erasure tombstone for its site follows ({name} deleted)"
        if not gone and not matches():
            return f"its {name} does not match its commitment (the {name} was edited)"
    return ""


def _problem(
    entry: LedgerEntry, expected_seq: int, prev_hash: str, version: int, tombstones: Mapping[str, int]
) -> str:
    """Return why ``entry`` breaks the chain, or "" when it is sound."""
    if entry.seq != expected_seq:
        return f"expected seq {expected_seq} next; entries are missing or were renumbered"
    if entry.prev_hash != prev_hash:
        return (
            f"its prev_hash does not match the entry_hash of seq {expected_seq - 1} "
            "(an entry before it was deleted, inserted, reordered or rehashed)"
        )
    if entry.v < version:
        return f"it is chain version {entry.v} after a version {version} entry (an older form was forged in)"
    try:
        if entry.computed_hash() != entry.entry_hash:
            return "its content does not match its entry_hash (the entry was edited)"
    except LedgerTamperedError as exc:
        return str(exc)
    return _content_problem(entry, tombstones.get(entry.site_id, 0) > entry.seq)


def walk(entries: Iterable[LedgerEntry]) -> ChainCheck:
    """Check a chain given in ``seq`` order and name the first bad entry.

    An entry whose evidence or site facts were erased passes only when a tombstone entry for the same
    site comes later in the chain (and that tombstone itself verifies). Once a version 3 entry appears,
    no older version may follow.
    """
    ordered = list(entries)
    tombstones: dict[str, int] = {}
    for entry in ordered:
        if entry.decision == TOMBSTONE:
            tombstones[entry.site_id] = max(tombstones.get(entry.site_id, 0), entry.seq)
    prev_hash, expected_seq, version = GENESIS_HASH, 1, 0
    for count, entry in enumerate(ordered, start=1):
        reason = _problem(entry, expected_seq, prev_hash, version, tombstones)
        if reason:
            return ChainCheck(False, count, prev_hash, entry.seq, entry.site_id, reason)
        prev_hash, expected_seq, version = entry.entry_hash, expected_seq + 1, max(version, entry.v)
    return ChainCheck(True, len(ordered), prev_hash)
