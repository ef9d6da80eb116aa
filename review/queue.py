"""The verification queue: sites of a run ordered by risk (when known) and score, with their status."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fieldtruth.review.carried import carried_decisions, with_carried
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.sitedata import site_facts, site_risk


@dataclass(frozen=True)
class QueueItem:
    """One line of the queue."""

    site_id: str
    label: str
    score: float
    risk: float | None
    status: str
    decisions: int
    carried: str = ""


def review_queue(run_dir: Path, statuses: tuple[str, ...] = ()) -> list[QueueItem]:
    """Return the run's sites, highest risk first (sites without a risk last), then highest score.

    Args:
        run_dir: The run folder (``detections.parquet`` and ``review.sqlite``).
        statuses: Keep only sites with one of these statuses (all when empty).

    A site found again by a run scanned with ``--previous`` shows the decision carried from the earlier
    run when this run's ledger has none (:mod:`fieldtruth.review.carried`).

    Raises:
        LedgerTamperedError: If the ledger, or an earlier run's, does not verify (its statuses are not to
            be trusted).
    """
    facts = site_facts(run_dir)
    risk = site_risk(run_dir, facts)
    with Ledger.of_run(run_dir) as ledger:
        ledger.verify().raise_for_error()
        status = ledger.statuses()
        counts: dict[str, int] = {}
        for entry in ledger.entries():
            counts[entry.site_id] = counts.get(entry.site_id, 0) + 1
    carried = carried_decisions(run_dir, {sid: site.score for sid, site in facts.items() if sid in status})
    status = with_carried(status, carried)
    items = [
        QueueItem(sid, site.label, site.score, risk.get(sid), status[sid], counts.get(sid, 0),
                  carried[sid].describe() if sid in carried and not counts.get(sid) else "")
        for sid, site in facts.items()
        if sid in status and (not statuses or status[sid] in statuses)
    ]
    items.sort(key=lambda i: (i.risk is None, -(i.risk or 0.0), -i.score, i.site_id))
    return items
