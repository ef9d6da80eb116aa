"""When each lead of a run was first seen, across the earlier runs of its region (``scan --previous``).

A lead found again carries its site's id from the earlier runs (:mod:`fieldtruth.review.lineage`), so
its first date is the earliest date of a linked earlier run whose detections hold that id; a lead not
found before was first seen on this run's date. The restricted map uses these dates for its "new since"
control. Dates only: nothing here is shared.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import pyarrow.parquet as pq

from fieldtruth.review.lineage import earlier_runs
from fieldtruth.runfiles import RunFiles

log = logging.getLogger(__name__)


class FirstSeen(NamedTuple):
    """First dates of a run's leads, and the dates of the runs behind them (oldest first)."""

    dates: dict[str, str]
    run_dates: list[str]


def run_date(run_dir: Path) -> str | None:
    """The date a run stands for: the last date of its ``imagery_dates``, else of its leads' ``acquired``."""
    files = RunFiles(run_dir)
    try:
        dates = json.loads(files.run_json.read_text(encoding="utf-8")).get("imagery_dates")
    except (OSError, ValueError, AttributeError):
        dates = None
    if not dates and files.detections.is_file():
        column = pq.read_table(files.detections, columns=["acquired"]).column(0).to_pylist()
        acquired = [str(a) for a in column if a]
        dates = max(acquired, default=None)
    return str(dates).split("/")[-1][:10] if dates else None


def first_seen(run_dir: Path, site_ids: Iterable[str]) -> FirstSeen:
    """The first date each of ``site_ids`` was seen in this run or a linked earlier one (a missing
    earlier run is skipped)."""
    own = run_date(run_dir)
    ids = list(site_ids)
    dates = {s: own for s in ids if own}
    run_dates = {own} if own else set()
    for earlier in earlier_runs(run_dir):
        files = RunFiles(earlier)
        when = run_date(earlier) if files.detections.is_file() else None
        if when is None:
            log.info("earlier run %s: no detections or date; skipped for first-seen dates", earlier)
            continue
        run_dates.add(when)
        held = set(pq.read_table(files.detections, columns=["site_id"]).column(0).to_pylist())
        for site in ids:
            if site in held and (site not in dates or when < dates[site]):
                dates[site] = when
    return FirstSeen(dates, sorted(run_dates))
