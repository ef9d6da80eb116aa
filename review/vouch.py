"""What the ledger vouches for: the run's detections compared with the site facts decisions committed to.

Every decision of chain version 3 commits to the class, score and position of its lead as they were when
it was made. A lead whose row in ``detections.parquet`` was moved, relabelled or rescored since then no
longer matches, and neither ``review verify`` nor ``export actionable`` will vouch for it. Decisions of
chain version 2 committed only the score, so only the score is checked for them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from fieldtruth.review.errors import SiteFactsMismatchError
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.records import TOMBSTONE, ChainCheck, LedgerEntry
from fieldtruth.review.sitedata import SiteFacts, site_facts
from fieldtruth.runfiles import DETECTIONS, RunFiles

log = logging.getLogger(__name__)

POSITION_TOLERANCE_DEG = 1e-7
"""Largest difference in longitude or latitude (about 1 cm) between a committed and a current position."""
SCORE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class FactsProblem:
    """A site whose detection differs from what a decision about it committed to."""

    site_id: str
    seq: int | None
    message: str


@dataclass(frozen=True)
class RunCheck:
    """Result of :func:`check_run`: the chain, and the detections against the committed site facts."""

    chain: ChainCheck
    problems: tuple[FactsProblem, ...]

    @property
    def ok(self) -> bool:
        """True when the chain verifies and every decided site still matches its committed facts."""
        return self.chain.ok and not self.problems

    def raise_for_error(self) -> None:
        """Raise for a broken chain, then for the first site whose facts differ."""
        self.chain.raise_for_error()
        raise_for_problems(self.problems)


def raise_for_problems(problems: Iterable[FactsProblem]) -> None:
    """Raise :class:`SiteFactsMismatchError` naming every problem, if there is any."""
    problems = list(problems)
    if problems:
        listed = "; ".join(f"site {p.site_id!r} (entry seq={p.seq}): {p.message}" for p in problems[:10])
        more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise SiteFactsMismatchError(
            f"expected detections.parquet to hold the leads as they were when decided; {listed}{more}. "
            "Restore detections.parquet from a backup, and do not act on these sites until people decide "
            "on them again."
        )


def _differences(entry: LedgerEntry, site: SiteFacts) -> list[str]:
    facts, found = entry.facts, []
    score = facts.score if facts is not None else entry.score
    if score is not None and not math.isclose(site.score, score, abs_tol=SCORE_TOLERANCE):
        found.append(f"score {site.score!r}, decided at {score!r}")
    if facts is None:
        return found
    if site.label != facts.label:
        found.append(f"class {site.label!r}, decided as {facts.label!r}")
    if facts.lon is not None and facts.lat is not None:
        lon = math.nan if site.lon is None else site.lon
        lat = math.nan if site.lat is None else site.lat
        if not (
            abs(lon - facts.lon) <= POSITION_TOLERANCE_DEG and abs(lat - facts.lat) <= POSITION_TOLERANCE_DEG
        ):
            found.append(f"position ({lon!r}, {lat!r}), decided at ({facts.lon!r}, {facts.lat!r})")
    return found


def facts_problems(
    facts: Mapping[str, SiteFacts],
    entries: Iterable[LedgerEntry],
    sites: Iterable[str] | None = None,
) -> list[FactsProblem]:
    """Compare each live decision (of ``sites``, or of every site) with the site's detection.

    Args:
        facts: site_id -> what the run's detections say about the site (:func:`site_facts`).
        entries: The ledger's entries in ``seq`` order.
        sites: Only these sites; every decided site when None.
    """
    wanted = None if sites is None else set(sites)
    by_site: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        if wanted is None or entry.site_id in wanted:
            by_site.setdefault(entry.site_id, []).append(entry)
    problems = []
    for site_id, site_entries in sorted(by_site.items()):
        if any(e.decision == TOMBSTONE for e in site_entries):
            continue
        site = facts.get(site_id)
        if site is None:
            problems.append(
                FactsProblem(site_id, site_entries[-1].seq, "decided on, but missing from detections")
            )
            continue
        for entry in site_entries:
            differences = _differences(entry, site)
            if differences:
                problems.append(
                    FactsProblem(site_id, entry.seq, "detections.parquet has " + "; ".join(differences))
                )
                break
    return problems


def check_run(run_dir: Path) -> RunCheck:
    """Verify a run's ledger and compare its detections with the site facts its decisions committed to."""
    run_dir = Path(run_dir)
    with Ledger.of_run(run_dir, register=False) as ledger:
        chain = ledger.verify()
        entries = list(ledger.entries())
    if not RunFiles(run_dir).detections.exists():
        log.warning("no %s in %s: only the chain was checked", DETECTIONS, run_dir)
        return RunCheck(chain, ())
    return RunCheck(chain, tuple(facts_problems(site_facts(run_dir), entries)))
