"""A region's sites over time: on which dates each was seen, missed, or not covered, and its status.

Per site and date (the dates of the runs given), one of three:

- *seen*: a lead of that date was linked to the site (:mod:`fieldtruth.pipelines.sitelinks`);
- *missed* (covered, not seen): no lead, and the site's place lies in a tile of that date whose core was
  fully covered by valid imagery (coverage status ``covered``);
- *not covered*: anything else: no tile there, or a tile ``partial`` (clouds, edges: the site's own
  pixels may have been the invalid ones), ``not covered`` or ``failed``. Not covered is never "gone".

The status of a site is taken at the newest date, against ``since`` (by default the date of the run
before the newest: "since the last scan"; with one date, every site seen is new):

- ``new``: seen on the newest date and first seen after ``since``;
- ``persistent``: seen on the newest date and first seen on or before ``since``;
- ``not seen lately``: not seen on the newest date, and missed on a date after it was last seen;
- ``unknown``: not seen on the newest date, and no date after it was last seen covered its place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

from fieldtruth.pipelines.sitelinks import RunSites, link_runs

log = logging.getLogger(__name__)

NEW, PERSISTENT, NOT_SEEN_LATELY, UNKNOWN = "new", "persistent", "not seen lately", "unknown"
STATUSES = (NEW, PERSISTENT, NOT_SEEN_LATELY, UNKNOWN)
COVERED = "covered"


@dataclass(frozen=True)
class SiteHistory:
    """One site of a region over the dates of its runs.

    Attributes:
        site: The site's id (the random id of its first sighting, carried across runs).
        label: Its class.
        lon: Longitude of its newest sighting (EPSG:4326).
        lat: Latitude of its newest sighting.
        score: The detector's score at its newest sighting.
        seen: Dates a lead was linked to it.
        missed: Dates its place was covered and no lead was found there.
        not_covered: Dates its place had no (or only partly) valid imagery.
        status: ``new``, ``persistent``, ``not seen lately`` or ``unknown`` (see the module).
        ids: Its lead id in each run it was seen in (:func:`run_label` -> id).
    """

    site: str
    label: str
    lon: float
    lat: float
    score: float
    seen: tuple[str, ...]
    missed: tuple[str, ...]
    not_covered: tuple[str, ...]
    status: str
    ids: dict[str, str]

    @property
    def first_seen(self) -> str:
        """The first date it was seen."""
        return self.seen[0]

    @property
    def last_seen(self) -> str:
        """The last date it was seen."""
        return self.seen[-1]


def run_label(run: RunSites) -> str:
    """How a run is named in :attr:`SiteHistory.ids`: its folder, or its name when it has none."""
    return str(run.root) if run.root is not None else run.name


def region_dates(runs: list[RunSites]) -> list[str]:
    """The distinct dates of the runs, oldest first."""
    return sorted({r.date for r in runs})


def default_since(dates: list[str]) -> str:
    """The date before the newest one ("since the last scan"); with one date, none (every site is new)."""
    return dates[-2] if len(dates) > 1 else ""


def site_histories(runs: list[RunSites], since: str | None = None) -> list[SiteHistory]:
    """The sites of the runs (one region, one or more dates) with their history and status.

    Raises:
        ValueError: If no run is given, or ``since`` is not an ISO date.
    """
    if not runs:
        raise ValueError("expected at least one run folder of the region; got none")
    dates = region_dates(runs)
    since = check_since(since) if since is not None else default_since(dates)
    links = link_runs(runs)
    if links.empty:
        return []
    newest = links.sort_values(["date", "run"]).groupby("site", sort=True).last()
    points = gpd.GeoSeries(gpd.points_from_xy(newest["lon"], newest["lat"]), crs="EPSG:4326")
    covered = {d: _covered(points, [r for r in runs if r.date == d]) for d in dates}
    names = [run_label(r) for r in runs]
    histories = []
    for pos, (site, row) in enumerate(newest.iterrows()):
        mine = links[links["site"] == site]
        seen = tuple(sorted(set(mine["date"])))
        missed = tuple(d for d in dates if d not in seen and covered[d][pos])
        blind = tuple(d for d in dates if d not in seen and not covered[d][pos])
        ids = {names[r]: s for r, s in zip(mine["run"], mine["site_id"], strict=True)}
        histories.append(SiteHistory(
            str(site), str(row["label"]), float(row["lon"]), float(row["lat"]), float(row["score"]),
            seen, missed, blind, _status(seen, missed, dates[-1], since), ids))
    return histories


def _status(seen: tuple[str, ...], missed: tuple[str, ...], newest: str, since: str) -> str:
    if seen[-1] == newest:
        return NEW if seen[0] > since else PERSISTENT
    return NOT_SEEN_LATELY if any(d > seen[-1] for d in missed) else UNKNOWN


def _covered(points: gpd.GeoSeries, runs: list[RunSites]) -> np.ndarray:
    """Whether each point lies in a fully covered tile of one of the runs."""
    inside = np.zeros(len(points), dtype=bool)
    for run in runs:
        tiles = run.coverage[run.coverage["status"] == COVERED]
        if tiles.empty:
            continue
        hits = gpd.GeoDataFrame(geometry=points.to_numpy(), crs="EPSG:4326").sjoin(
            tiles[["geometry"]], predicate="within", how="inner")
        inside[np.unique(hits.index.to_numpy())] = True
    return inside


def check_since(since: str) -> str:
    """``since`` as an ISO date.

    Raises:
        ValueError: If it is not one.
    """
    try:
        return pd.Timestamp(since).date().isoformat() if len(since) >= 10 else _bad_since(since)
    except ValueError:
        return _bad_since(since)


def _bad_since(since: str) -> str:
    raise ValueError(f"expected --since as an ISO date (YYYY-MM-DD); got {since!r}. Example: 2026-03-01")
