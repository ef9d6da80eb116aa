"""``fieldtruth changes``: what changed in a region between the dates of its runs.

The runs (run folders of one region, each standing for one acquisition date) are linked into sites
(:mod:`fieldtruth.pipelines.sitelinks`), each site gets its history and status
(:mod:`fieldtruth.pipelines.sitehistory`) and its review status in the newest run that saw it, and
the sites are counted by status per risk cell, leaving out those reviewers rejected. The
restricted outputs (the sites with their positions and dates) stay with the analyst; the shared change
view (:mod:`fieldtruth.maps.change_shared`) holds counts per cell only, small counts suppressed.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from fieldtruth.atomicfile import atomic_path, write_json
from fieldtruth.maps.change_shared import COUNT_COLUMNS, shared_change_view
from fieldtruth.maps.risk_grid import DEFAULT_CELL_M, EQUAL_AREA_CRS, cell_indices
from fieldtruth.maps.risk_shared import DEFAULT_K
from fieldtruth.pipelines.sitehistory import (
    STATUSES,
    SiteHistory,
    default_since,
    region_dates,
    run_label,
    site_histories,
)
from fieldtruth.pipelines.sitelinks import RunSites, load_run
from fieldtruth.review.carried import REJECTED, carried_decisions, with_carried
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.records import UNVERIFIED
from fieldtruth.runfiles import RunFiles

log = logging.getLogger(__name__)

SITE_COLUMNS = ("site", "label", "status", "review", "first_seen", "last_seen", "seen", "missed",
                "not_covered", "score", "lon", "lat", "cell_id")


@dataclass(frozen=True)
class Changes:
    """What changed in a region.

    Attributes:
        dates: The dates of the runs, oldest first.
        since: The date ``new`` counts from.
        sites: Every site with its history (restricted: exact positions).
        cells: Counts per cell: ``ix``, ``iy``, ``cell_id`` and one column per status.
        cell_m: The cells' side in metres.
    """

    dates: list[str]
    since: str
    sites: list[SiteHistory]
    cells: pd.DataFrame
    cell_m: float
    review: dict[str, str]

    def counted(self) -> list[SiteHistory]:
        """The sites counted: all but those reviewers rejected (look-alikes are no sites)."""
        return [s for s in self.sites if self.review.get(s.site) != REJECTED]

    def totals(self) -> dict[str, int]:
        """Number of counted sites per status (every status, zeros included)."""
        counted = Counter(s.status for s in self.counted())
        return {status: counted.get(status, 0) for status in STATUSES}


def region_changes(run_dirs: list[Path], since: str | None = None,
                   cell_m: float = DEFAULT_CELL_M) -> Changes:
    """Link the runs of a region and count its sites by status per cell.

    Raises:
        RunFolderError: If a run folder lacks its detections, coverage or date.
        ValueError: If ``since`` is not an ISO date or ``cell_m`` is not positive.
    """
    if not cell_m > 0:
        raise ValueError(f"expected a positive cell size in metres; got {cell_m!r}")
    runs = [load_run(Path(d)) for d in run_dirs]
    dates = region_dates(runs)
    sites = site_histories(runs, since)
    since = since or default_since(dates)
    review = review_statuses(sites, runs)
    counted = [s for s in sites if review.get(s.site) != REJECTED]
    return Changes(dates, since, sites, cell_counts(counted, cell_m), cell_m, review)


def review_statuses(sites: list[SiteHistory], runs: list[RunSites]) -> dict[str, str]:
    """Each site's review status in the newest run that saw it, decisions carried from earlier runs
    included (:mod:`fieldtruth.review.carried`).

    Raises:
        LedgerTamperedError: If a run's ledger (or an earlier one it carries from) does not verify.
    """
    shown: dict[str, dict[str, str]] = {}
    for run in runs:
        label = run_label(run)
        if run.root is None:
            shown[label] = {}
            continue
        own = dict.fromkeys(run.detections["site_id"].astype(str), UNVERIFIED)
        if RunFiles(run.root).ledger.is_file():
            with Ledger.open(RunFiles(run.root).ledger) as ledger:
                ledger.verify().raise_for_error()
                own.update(ledger.statuses())
        scores = dict(zip(run.detections["site_id"].astype(str), run.detections["score"].astype(float),
                          strict=True))
        shown[label] = with_carried(own, carried_decisions(run.root, scores))
    order = sorted(runs, key=lambda r: r.date, reverse=True)
    review = {}
    for site in sites:
        newest = next(run_label(r) for r in order if run_label(r) in site.ids)
        review[site.site] = shown[newest].get(site.ids[newest], UNVERIFIED)
    return review


def _column(status: str) -> str:
    return status.replace(" ", "_")


def cell_counts(sites: list[SiteHistory], cell_m: float) -> pd.DataFrame:
    """Sites by status per cell of the risk grid (cells without a site left out)."""
    columns = ["ix", "iy", "cell_id", *COUNT_COLUMNS]
    if not sites:
        return pd.DataFrame(columns=columns)
    ix, iy = _indices(sites, cell_m)
    table = pd.DataFrame({"ix": ix, "iy": iy, "status": [_column(s.status) for s in sites]})
    counts = pd.crosstab([table["ix"], table["iy"]], table["status"])
    counts = counts.reindex(columns=list(COUNT_COLUMNS), fill_value=0).reset_index()
    counts["cell_id"] = counts["ix"].astype(str) + "_" + counts["iy"].astype(str)
    return counts[columns].sort_values(["iy", "ix"]).reset_index(drop=True)


def _indices(sites: list[SiteHistory], cell_m: float) -> tuple[np.ndarray, np.ndarray]:
    points = gpd.GeoSeries(gpd.points_from_xy([s.lon for s in sites], [s.lat for s in sites]),
                           crs="EPSG:4326")
    ea = points.to_crs(EQUAL_AREA_CRS)
    return cell_indices(ea.x.to_numpy(), ea.y.to_numpy(), cell_m)


def site_cells(sites: list[SiteHistory], cell_m: float) -> list[str]:
    """The cell id of each site."""
    if not sites:
        return []
    ix, iy = _indices(sites, cell_m)
    return [f"{a}_{b}" for a, b in zip(ix.tolist(), iy.tolist(), strict=True)]


def write_sites_csv(changes: Changes, path: Path) -> None:
    """Write the sites with their history (restricted: exact positions) as CSV, dates joined by ``;``."""
    cells = site_cells(changes.sites, changes.cell_m)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(SITE_COLUMNS)
        for site, cell in zip(changes.sites, cells, strict=True):
            writer.writerow([site.site, site.label, site.status, changes.review.get(site.site, UNVERIFIED),
                             site.first_seen, site.last_seen,
                             ";".join(site.seen), ";".join(site.missed), ";".join(site.not_covered),
                             f"{site.score:.4f}", f"{site.lon:.6f}", f"{site.lat:.6f}", cell])


def write_shared_changes(changes: Changes, path: Path, k: int = DEFAULT_K) -> dict:
    """Write the shared change view (counts per cell, small counts suppressed) as GeoJSON."""
    view = shared_change_view(changes.cells, cell_m=changes.cell_m, k=k, since=changes.since,
                              dates=changes.dates)
    write_json(path, view)
    return view
