"""The ONLY way to an actionable list: sites independently confirmed by enough different reviewers.

A site qualifies when at least ``min_confirmations`` different reviewers' latest decision about it is
``confirmed`` (a later decision by the same reviewer supersedes their earlier one), no reviewer's latest
decision about it is ``rejected``, and, when ``require_field_visit`` is set, at least one of those
confirmations was made in the field. Reviewers are told apart by the canonical form of their ids
(:func:`~fieldtruth.review.rules.reviewer_key`: ``RV07`` and ``rv07`` are one person, one vote). The export
refuses when the chain does not verify, when an exported site's detection no longer matches the facts
its decisions committed to (:mod:`~fieldtruth.review.vouch`), or when no site qualifies. Every exported
site carries its full decision trail (without the visit positions of field workers).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fieldtruth.atomicfile import write_text
from fieldtruth.review.errors import InvalidDecisionError, NotActionableError
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.records import TOMBSTONE, LedgerEntry
from fieldtruth.review.rules import reviewer_key
from fieldtruth.review.sitedata import SiteFacts, site_facts
from fieldtruth.review.vouch import facts_problems, raise_for_problems

log = logging.getLogger(__name__)

STATEMENT = (
    "Sites confirmed by independent human reviewers in the fieldtruth review ledger. Each carries its "
    "decision trail; check it before acting, and keep this file restricted: it holds exact locations."
)


@dataclass(frozen=True)
class Rule:
    """What makes a site actionable."""

    min_confirmations: int = 2
    require_field_visit: bool = False


def qualifies(entries: Iterable[LedgerEntry], rule: Rule) -> bool:
    """Apply ``rule`` to one site's entries (in ``seq`` order)."""
    latest: dict[str, LedgerEntry] = {}
    for entry in entries:
        if entry.decision == TOMBSTONE:
            return False
        latest[reviewer_key(entry.reviewer)] = entry
    confirmed = [e for e in latest.values() if e.decision == "confirmed"]
    if any(e.decision == "rejected" for e in latest.values()):
        return False
    if rule.require_field_visit and not any(e.method == "field" for e in confirmed):
        return False
    return len(confirmed) >= rule.min_confirmations


def trail(entries: Iterable[LedgerEntry]) -> list[dict[str, Any]]:
    """Return a site's decision trail as JSON-ready dicts (evidence without the field worker's position)."""
    return [
        {
            "seq": e.seq, "decision": e.decision, "method": e.method, "reviewer": e.reviewer,
            "decided_at": e.decided_at, "visited_at": e.visited_at,
            "evidence": _without_position(e.evidence),
            "entry_hash": e.entry_hash,
        }
        for e in entries
    ]


def _without_position(evidence: dict[str, Any] | None) -> dict[str, Any] | None:
    """The evidence as exported: the field worker's position (personal data) stays in the ledger."""
    return None if evidence is None else {k: v for k, v in evidence.items() if k != "position"}


def _by_site(ledger: Ledger) -> dict[str, list[LedgerEntry]]:
    sites: dict[str, list[LedgerEntry]] = {}
    for entry in ledger.entries():
        sites.setdefault(entry.site_id, []).append(entry)
    return sites


def _refusal(by_site: dict[str, list[LedgerEntry]], rule: Rule) -> str:
    live = [es for es in by_site.values() if not any(e.decision == TOMBSTONE for e in es)]
    best = max((len({reviewer_key(e.reviewer) for e in es if e.decision == "confirmed"}) for es in live),
               default=0)
    field = " including one made in the field," if rule.require_field_visit else ""
    return (
        f"expected at least one site confirmed by {rule.min_confirmations} different reviewers,{field} whose "
        f"latest decisions are not rejections; got none (the best site has {best} confirming reviewer(s)). "
        "Nothing was written: record more independent decisions with `fieldtruth review decide` or "
        "`fieldtruth review import` first."
    )


def export_actionable(run_dir: Path, out: Path, rule: Rule = Rule()) -> list[str]:
    """Write the actionable sites of a run as GeoJSON (EPSG:4326) and return their ids.

    Raises:
        InvalidDecisionError: If ``min_confirmations`` is below 1.
        LedgerTamperedError: If the decision chain does not verify (nothing is written).
        SiteFactsMismatchError: If a site that qualifies was moved, relabelled or rescored in
            ``detections.parquet`` after its decisions (nothing is written).
        NotActionableError: If no site qualifies (nothing is written).
    """
    if rule.min_confirmations < 1:
        raise InvalidDecisionError(
            f"expected --min-confirmations of at least 1; got {rule.min_confirmations!r}."
        )
    facts = site_facts(run_dir)
    with Ledger.of_run(run_dir, register=False) as ledger:
        check = ledger.verify()
        check.raise_for_error()
        by_site = _by_site(ledger)
    chosen = sorted(s for s, es in by_site.items() if s in facts and qualifies(es, rule))
    if not chosen:
        raise NotActionableError(_refusal(by_site, rule))
    raise_for_problems(facts_problems(facts, (e for s in chosen for e in by_site[s])))
    features = [_feature(facts[s], by_site[s]) for s in chosen]
    doc = {
        "type": "FeatureCollection",
        "statement": STATEMENT,
        "rule": {
            "min_confirmations": rule.min_confirmations,
            "require_field_visit": rule.require_field_visit,
        },
        "ledger_head_hash": check.head_hash,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "features": features,
    }
    write_text(out, json.dumps(doc, indent=1, ensure_ascii=False))
    log.info("wrote %d actionable site(s) to %s", len(chosen), out)
    return chosen


def _feature(facts: SiteFacts, entries: list[LedgerEntry]) -> dict[str, Any]:
    props: dict[str, Any] = {k: v for k, v in asdict(facts).items() if k not in ("lon", "lat")}
    props["confirmed_by"] = sorted({reviewer_key(e.reviewer) for e in entries if e.decision == "confirmed"})
    props["decision_trail"] = trail(entries)
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [facts.lon, facts.lat]},
        "properties": props,
    }
