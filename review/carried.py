"""Decisions that follow a site into later runs of its region.

A run scanned with ``--previous`` gives a lead found again the id it had in the earlier run
(:mod:`fieldtruth.review.lineage`). The decisions recorded on that site in the earlier runs' ledgers are
*carried*: they are read from those ledgers (each verified first), never copied into this run's ledger,
so every ledger holds only decisions people made on its own leads and still verifies as before.

What the queue and the map show for a site:

- a decision recorded in this run's ledger: that decision (the run's own word is the newest);
- else the newest decision about the site in an earlier run (by the time the ledger recorded it):
  a confirmed kiln stays confirmed, with its history;
- except a *rejected* site whose score in this run is at least :data:`REQUEUE_MARGIN` above its score
  when it was rejected: it is queued again as ``unverified`` (the detector now sees it markedly more
  clearly; something may have changed there).

The two-reviewer rule is unchanged: ``export actionable`` counts only the decisions of the run's own
ledger. A carried confirmation is shown as such, but is not a vote in the later run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from fieldtruth.review.errors import LedgerError
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.lineage import earlier_runs
from fieldtruth.review.records import TOMBSTONE, UNVERIFIED
from fieldtruth.runfiles import RunFiles

log = logging.getLogger(__name__)

#: How much higher (absolute, on the 0-1 score) a rejected site must score in a later run to be queued again.
REQUEUE_MARGIN = 0.15
REJECTED = "rejected"


@dataclass(frozen=True)
class Carried:
    """The newest decision about a site in an earlier run of its region.

    Attributes:
        decision: The decision (``confirmed``, ``rejected``, ``uncertain``, ``field_visit``).
        run: The earlier run folder's name.
        decided_at: When that ledger recorded it (UTC, ISO 8601).
        reviewers: Who decided on the site in that run (canonical ids), in order.
        decisions: How many decisions that run's ledger holds about the site.
        score_then: The site's score in that run.
        requeued: True when the decision was a rejection and the score rose by :data:`REQUEUE_MARGIN`.
    """

    decision: str
    run: str
    decided_at: str
    reviewers: tuple[str, ...]
    decisions: int
    score_then: float | None
    requeued: bool = False

    def describe(self, *, reviewers: bool = True) -> str:
        """One line, e.g. ``confirmed in run-2026-01 by rv07, rv08 (2 decision(s), 2026-01-20)``; without
        the reviewers' code names when ``reviewers`` is False (the map, which travels to phones)."""
        who = f" by {', '.join(dict.fromkeys(self.reviewers))}" if reviewers else ""
        text = f"{self.decision} in {self.run}{who} ({self.decisions} decision(s), {self.decided_at[:10]})"
        return text + "; queued again: the score rose" if self.requeued else text


def carried_decisions(run_dir: Path, scores: dict[str, float]) -> dict[str, Carried]:
    """The newest earlier decision about each of ``scores``' sites, from the runs ``run_dir`` carried ids
    from. A missing earlier run is skipped with a warning.

    Args:
        run_dir: The later run folder.
        scores: site_id -> score of the site in this run.

    Raises:
        LedgerTamperedError: If an earlier run's ledger does not verify (its decisions are not to be trusted).
    """
    found: dict[str, Carried] = {}
    for earlier in earlier_runs(run_dir):
        if not RunFiles(earlier).ledger.is_file():
            log.warning("earlier run %s has no ledger (moved or deleted?): no decisions carried from it",
                        earlier)
            continue
        try:
            ledger = Ledger.open(RunFiles(earlier).ledger)
        except LedgerError as exc:
            log.warning("earlier run %s: its ledger could not be opened (%s)", earlier, exc)
            continue
        with ledger:
            ledger.verify().raise_for_error()
            sites = ledger.sites()
            history: dict[str, list] = {}
            for entry in ledger.entries():
                if entry.site_id in scores and entry.site_id in sites and entry.decision != TOMBSTONE:
                    history.setdefault(entry.site_id, []).append(entry)
        for site_id, entries in history.items():
            newest = entries[-1]
            if site_id in found and found[site_id].decided_at >= newest.decided_at:
                continue
            then = sites[site_id].score
            requeued = newest.decision == REJECTED and then is not None and (
                scores[site_id] >= float(then) + REQUEUE_MARGIN)
            found[site_id] = Carried(newest.decision, earlier.name, newest.decided_at,
                                     tuple(e.reviewer for e in entries), len(entries), then, requeued)
    return found


def with_carried(statuses: dict[str, str], carried: dict[str, Carried]) -> dict[str, str]:
    """The statuses a run's queue and map show: the run's own decision, else the carried one (a rejected
    site whose score rose is ``unverified`` again)."""
    shown = dict(statuses)
    for site_id, status in statuses.items():
        if status == UNVERIFIED and site_id in carried:
            earlier = carried[site_id]
            shown[site_id] = UNVERIFIED if earlier.requeued else earlier.decision
    return shown
