"""Walking the decision chain: every link, every entry hash, every evidence commitment."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fieldtruth.review.records import GENESIS_HASH, TOMBSTONE, ChainCheck, LedgerEntry


def _problem(entry: LedgerEntry, expected_seq: int, prev_hash: str, tombstones: Mapping[str, int]) -> str:
    """Return why ``entry`` breaks the chain, or "" when it is sound."""
    if entry.seq != expected_seq:
        return f"expected seq {expected_seq} next; entries are missing or were renumbered"
    if entry.prev_hash != prev_hash:
        return (
            f"its prev_hash does not match the entry_hash of seq {expected_seq - 1} "
            "(an entry before it was deleted, inserted, reordered or rehashed)"
        )
    if entry.computed_hash() != entry.entry_hash:
        return "its content does not match its entry_hash (the entry was edited)"
    if entry.erased:
        if entry.decision == TOMBSTONE or tombstones.get(entry.site_id, 0) <= entry.seq:
            return "its evidence is gone but no erasure tombstone for its site follows (evidence deleted)"
    elif not entry.evidence_matches():
        return "its evidence does not match its commitment (the note or evidence was edited)"
    return ""


def walk(entries: Iterable[LedgerEntry]) -> ChainCheck:
    """Check a chain given in ``seq`` order and name the first bad entry.

    An entry whose evidence was erased passes only when a tombstone entry for the same site comes later
    in the chain (and that tombstone itself verifies).
    """
    ordered = list(entries)
    tombstones: dict[str, int] = {}
    for entry in ordered:
        if entry.decision == TOMBSTONE:
            tombstones[entry.site_id] = max(tombstones.get(entry.site_id, 0), entry.seq)
    prev_hash, expected_seq = GENESIS_HASH, 1
    for count, entry in enumerate(ordered, start=1):
        reason = _problem(entry, expected_seq, prev_hash, tombstones)
        if reason:
            return ChainCheck(False, count, prev_hash, entry.seq, entry.site_id, reason)
        prev_hash, expected_seq = entry.entry_hash, expected_seq + 1
    return ChainCheck(True, len(ordered), prev_hash)
