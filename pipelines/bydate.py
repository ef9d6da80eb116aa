"""``scan --by-date``: one run per acquisition date of the imagery, linked into one region.

Imagery of several dates (a STAC search over a date range, a catalogue) is otherwise mosaicked into one
run, least cloudy scene first, so a date's pixels can hide another's. With ``--by-date`` the scan keeps
the dates apart: ``--out`` becomes a region folder holding one run folder per date (``OUT/<date>``),
each scanned from that date's scenes only, with the run of the date before as ``--previous`` (so a site
keeps its id from date to date, :mod:`fieldtruth.pipelines.sitelinks`). ``fieldtruth changes OUT/*``
then says what changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from fieldtruth.errors import FieldtruthError
from fieldtruth.ingest.aoi import read_aoi
from fieldtruth.ingest.sources import open_imagery
from fieldtruth.pipelines.errors import PreflightError
from fieldtruth.pipelines.scan import ScanConfig, scan
from fieldtruth.pipelines.scansummary import ScanSummary

log = logging.getLogger(__name__)


def imagery_dates(config: ScanConfig) -> list[str]:
    """The acquisition dates (``YYYY-MM-DD``) of the scan's imagery, oldest first.

    Raises:
        PreflightError: the imagery cannot be opened, or a scene has no date (it cannot be placed in time).
    """
    try:
        aoi = read_aoi(config.aoi) if config.aoi else None
        scenes = open_imagery(config.imagery, collection=config.collection, datetime=config.datetime,
                              max_cloud=config.max_cloud, bbox=aoi.bounds if aoi is not None else None,
                              allow_hosts=config.allow_hosts)
    except FieldtruthError as exc:
        raise PreflightError(str(exc)) from exc
    undated = [s.id for s in scenes if not s.acquired]
    if undated:
        raise PreflightError(
            f"--by-date needs the acquisition date of every scene; {undated[:5]!r} have none. "
            "Scan them without --by-date, or give scenes with dates"
        )
    return sorted({str(s.acquired)[:10] for s in scenes})


def scan_by_date(config: ScanConfig, *, progress: Callable[[str], None] | None = None) -> list[ScanSummary]:
    """Scan each date of the imagery into ``config.out / <date>``, each linked to the run before.

    Returns:
        The summary of each date's scan, oldest first.

    Raises:
        PreflightError: as :func:`imagery_dates`, or a date's scan's own preflight.
    """
    say = progress or (lambda message: log.info("%s", message))
    dates = imagery_dates(config)
    say(f"scan --by-date: {len(dates)} date(s) ({', '.join(dates)}), one run each under {config.out}")
    summaries, previous = [], tuple(config.previous)
    for date in dates:
        run = Path(config.out) / date
        say(f"scan --by-date: {date} -> {run}")
        summaries.append(scan(replace(config, out=run, date=date, previous=previous), progress=progress))
        previous = (run,)
    return summaries
