"""The verification queue: sites of a run in the order to review them, with their status.

Three orders (``fieldtruth review queue RUN --order ...``):

- ``score`` (the default): highest risk first (when the run has risk cells), then highest score. For a
  team that wants the likeliest sites confirmed first.
- ``uncertain``: the leads whose score lies closest to the detector's operating threshold first. Those are
  the decisions that teach a detector most when it is fine-tuned on them (``fieldtruth train
  --from-review``), and the ones that fix the region's own threshold.
- ``spread``: leads spread over the region: the best-scored lead first, then each time the lead farthest
  from every lead already listed. For a first review round of a new region, so that the decisions cover
  its landscapes (and their look-alikes), not one harbour.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fieldtruth.review.carried import carried_decisions, with_carried
from fieldtruth.review.errors import QueueOrderError
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.sitedata import SiteFacts, site_facts, site_risk
from fieldtruth.runfiles import RunFiles

#: The queue's orders (see the module docstring).
ORDERS = ("score", "uncertain", "spread")


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


def review_queue(run_dir: Path, statuses: tuple[str, ...] = (), order: str = "score") -> list[QueueItem]:
    """Return the run's sites in the order to review them (see the module docstring).

    Args:
        run_dir: The run folder (``detections.parquet`` and ``review.sqlite``).
        statuses: Keep only sites with one of these statuses (all when empty).
        order: ``score``, ``uncertain`` or ``spread``.

    A site found again by a run scanned with ``--previous`` shows the decision carried from the earlier
    run when this run's ledger has none (:mod:`fieldtruth.review.carried`).

    Raises:
        QueueOrderError: An unknown order, or ``uncertain`` for a run without the detector's threshold.
        LedgerTamperedError: If the ledger, or an earlier run's, does not verify (its statuses are not to
            be trusted).
    """
    if order not in ORDERS:
        raise QueueOrderError(f"unknown queue order {order!r}; use one of {ORDERS!r}")
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
    if order == "uncertain":
        threshold = _threshold(Path(run_dir))
        items.sort(key=lambda i: (abs(i.score - threshold), i.site_id))
    elif order == "spread":
        items = _spread(items, facts)
    return items


def _threshold(run_dir: Path) -> float:
    """The operating threshold of the detector that scanned the run (its model card in the run folder)."""
    path = RunFiles(run_dir).model_card
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("threshold")
        return float(value)
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise QueueOrderError(f"the order 'uncertain' needs the detector's threshold in {str(path)!r} "
                              f"({exc}); use --order score or spread for this run") from exc


def _spread(items: list[QueueItem], facts: dict[str, SiteFacts]) -> list[QueueItem]:
    """Farthest-point order: the first item, then each time the one farthest from those already taken
    (sites without a position last, in their order)."""
    placed = [i for i in items if facts[i.site_id].lon is not None and facts[i.site_id].lat is not None]
    rest = [i for i in items if i not in placed]
    if not placed:
        return rest
    lon = np.radians([facts[i.site_id].lon for i in placed])
    lat = np.radians([facts[i.site_id].lat for i in placed])
    xyz = np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
    return [placed[k] for k in farthest_point_order(xyz)] + rest


def farthest_point_order(points: np.ndarray) -> list[int]:
    """Indices of ``points`` (n x d, any Euclidean coordinates) in farthest-point order: the first point,
    then each time the one farthest from those already taken."""
    nearest = np.full(len(points), np.inf)
    taken = np.zeros(len(points), dtype=bool)
    order, current = [], 0
    for _ in range(len(points)):
        order.append(current)
        taken[current] = True
        nearest = np.minimum(nearest, np.linalg.norm(points - points[current], axis=1))
        nearest[taken] = -1.0
        current = int(np.argmax(nearest))
    return order
