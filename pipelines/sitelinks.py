"""Linking the leads of several runs (dates) of one region into sites, by position.

Two detections of different runs are one site when they have the same class and lie within the link
tolerance of each other (:func:`link_tolerance_m`): half the object's size (a detector's peak can fall
anywhere on a kiln's 120 m oval) plus two pixels (the co-registration of two acquisitions, and the
peak's own jitter). The object's size is the detector's minimum distance between two leads
(``min_distance_px`` of its model card, which a detector's author sets to about the size of its
objects) in the run's pixels. Matching is one-to-one, nearest first; a site's position is its newest
sighting, so a site that creeps a little from date to date stays one site.

A lead that already carries the id of a site (a run scanned with ``--previous``) is that site whatever
its position; the others take the id of the site they match, or keep their own random id (a new site).
Ids are never derived from the place: the id a site keeps is the random one of its first sighting.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from fieldtruth.atomicfile import atomic_path, write_json
from fieldtruth.pipelines.errors import RunFolderError
from fieldtruth.pipelines.tileresult import read_tile_result
from fieldtruth.review.lineage import earlier_runs, record_links
from fieldtruth.runfiles import RunFiles

log = logging.getLogger(__name__)

#: Pixels added to half the object's size: co-registration between dates, and the peak's jitter.
REGISTRATION_PX = 2.0
DEFAULT_MIN_DISTANCE_PX = 6


def link_tolerance_m(pixel_m: float, object_m: float) -> float:
    """How far apart (metres) two sightings of one site may be: half the object plus two pixels.

    Raises:
        ValueError: If a size is not a positive number.
    """
    if not (pixel_m > 0 and object_m > 0):
        raise ValueError(f"expected positive pixel and object sizes in metres; got {pixel_m!r}, {object_m!r}")
    return object_m / 2.0 + REGISTRATION_PX * pixel_m


@dataclass(frozen=True)
class RunSites:
    """What linking needs of one run: its date, its leads and where it had imagery.

    Attributes:
        name: The run folder's name (or a label for a run not yet written).
        date: The acquisition date the run stands for (ISO, ``YYYY-MM-DD``).
        detections: ``site_id``, ``label``, ``score`` and point geometry, EPSG:4326.
        coverage: Tile polygons with their coverage ``status``, EPSG:4326.
        tolerance_m: The link tolerance of this run (:func:`link_tolerance_m`).
        root: The run folder, when there is one.
    """

    name: str
    date: str
    detections: gpd.GeoDataFrame
    coverage: gpd.GeoDataFrame
    tolerance_m: float
    root: Path | None = None


def _json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def run_date(dates: str | None, where: str) -> str:
    """The date a run stands for: its imagery date, or the last date of a range (``first/last``).

    Raises:
        RunFolderError: If the run records no date.
    """
    if not dates:
        raise RunFolderError(
            f"expected {where} to record the acquisition date of its imagery; it records none. "
            "Scan imagery whose scenes carry a date (scene.json, STAC datetime, Sentinel-2 metadata)."
        )
    last = str(dates).split("/")[-1][:10]
    if "/" in str(dates):
        log.warning("%s covers the dates %s; it counts as %s (scan each date alone to keep them apart)",
                    where, dates, last)
    return last


def load_run(root: Path) -> RunSites:
    """Read what linking needs from a run folder.

    Raises:
        RunFolderError: If the folder lacks its detections, coverage or date.
    """
    files = RunFiles(Path(root))
    for needed in (files.detections, files.coverage):
        if not needed.is_file():
            raise RunFolderError(
                f"expected {needed.name} in the run folder {str(files.root)!r}; it is missing. "
                "Give run folders written by `fieldtruth scan`."
            )
    run_json, card = _json(files.run_json), _json(files.model_card)
    detections = gpd.read_parquet(files.detections).to_crs("EPSG:4326")
    dates = run_json.get("imagery_dates")
    if not dates and len(detections) and "acquired" in detections.columns:
        dates = max(str(a) for a in detections["acquired"] if a)
    pixel = float((run_json.get("grid") or {}).get("resolution") or card.get("gsd_m") or 10.0)
    object_m = float(card.get("min_distance_px") or DEFAULT_MIN_DISTANCE_PX) * pixel
    return RunSites(files.root.name, run_date(dates, repr(str(files.root))), detections,
                    gpd.read_parquet(files.coverage).to_crs("EPSG:4326"), link_tolerance_m(pixel, object_m),
                    files.root)


def metric_crs(runs: list[RunSites]) -> object:
    """A metric CRS for all the runs (the UTM zone of their coverage)."""
    frames = [r.coverage.geometry for r in runs if len(r.coverage)] + [
        r.detections.geometry for r in runs if len(r.detections)]
    if not frames:
        return "EPSG:3857"
    return gpd.GeoSeries(pd.concat(frames, ignore_index=True), crs="EPSG:4326").estimate_utm_crs()


def link_runs(runs: list[RunSites]) -> pd.DataFrame:
    """Link the leads of runs into sites, date by date (runs of the same date in the order given).

    Returns:
        One row per sighting: ``site`` (the site's id over time), ``run`` (index into ``runs``),
        ``date``, ``site_id`` (the lead's id in its run), ``label``, ``score``, ``lon``, ``lat``.
    """
    crs = metric_crs(runs)
    known: dict[str, tuple[float, float, str]] = {}  # site -> newest x, y, label
    parts = []
    for index in sorted(range(len(runs)), key=lambda i: runs[i].date):
        run = runs[index]
        dets = run.detections
        xy = dets.geometry.to_crs(crs) if len(dets) else dets.geometry
        x, y = np.asarray(xy.x, dtype=float), np.asarray(xy.y, dtype=float)
        ids = dets["site_id"].astype(str).tolist()
        labels = dets["label"].astype(str).tolist()
        sites = _match(ids, labels, x, y, known, run.tolerance_m)
        for i, site in enumerate(sites):
            known[site] = (x[i], y[i], labels[i])
        parts.append(pd.DataFrame({
            "site": sites, "run": index, "date": run.date, "site_id": ids, "label": labels,
            "score": dets["score"].astype(float).to_numpy(), "lon": dets.geometry.x.to_numpy(),
            "lat": dets.geometry.y.to_numpy(),
        }))
    columns = ["site", "run", "date", "site_id", "label", "score", "lon", "lat"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def _match(ids: list[str], labels: list[str], x: np.ndarray, y: np.ndarray,
           known: dict[str, tuple[float, float, str]], tolerance: float) -> list[str]:
    """The site of each lead of one run: its own id when that is a known site, else the nearest known site
    of its class within ``tolerance`` not yet taken in this run (nearest pairs first), else its own id."""
    sites: list[str | None] = [i if i in known else None for i in ids]
    taken = {s for s in sites if s is not None}
    free = [s for s in known if s not in taken]
    open_leads = [i for i, s in enumerate(sites) if s is None]
    if free and open_leads:
        tree = cKDTree(np.array([[known[s][0], known[s][1]] for s in free]))
        pairs = []
        for i in open_leads:
            for j in tree.query_ball_point([x[i], y[i]], r=tolerance):
                if known[free[j]][2] == labels[i]:
                    pairs.append((float(np.hypot(x[i] - known[free[j]][0], y[i] - known[free[j]][1])), i, j))
        for _, i, j in sorted(pairs):
            if sites[i] is None and free[j] not in taken:
                sites[i] = free[j]
                taken.add(free[j])
    return [s if s is not None else ids[i] for i, s in enumerate(sites)]


def carry_ids(detections: gpd.GeoDataFrame, date: str, coverage: gpd.GeoDataFrame, tolerance_m: float,
              previous: list[Path]) -> dict[str, str]:
    """The ids a new run's leads take from the sites of earlier runs of the region (``scan --previous``).

    Args:
        detections: The new run's leads (EPSG:4326, with their fresh random ``site_id``).
        date: The new run's date.
        coverage: The new run's coverage.
        tolerance_m: The new run's link tolerance.
        previous: Earlier run folders of the region.

    Returns:
        The lead's id in this run -> the id of the earlier site it is (only leads found again).
    """
    runs = [load_run(p) for p in previous]
    runs.append(RunSites("new", date, detections, coverage, tolerance_m))
    links = link_runs(runs)
    mine = links[links["run"] == len(runs) - 1]
    return {a: b for a, b in zip(mine["site_id"], mine["site"], strict=True) if a != b}


def carry_forward(root: Path, previous: list[Path], date: str, tolerance_m: float) -> int:
    """Give the leads of a run found again in earlier runs of its region the ids they had there, and record
    the link (``lineage.json`` here and in the earlier runs). Called by the scan once its detections are
    merged and before its ledger registers them; running it again changes nothing.

    The ids are rewritten in ``detections.parquet`` and in the tile results, so a resumed scan keeps
    them and ``forget`` finds the site by its id everywhere.

    Args:
        root: The new run folder (its ``detections.parquet`` and ``coverage.parquet`` written).
        previous: Earlier run folders of the region.
        date: The new run's date (ISO).
        tolerance_m: The new run's link tolerance (:func:`link_tolerance_m`).

    Returns:
        The number of leads that took an earlier site's id.

    Raises:
        RunFolderError: If an earlier run lacks its detections, coverage or date.
    """
    files = RunFiles(Path(root))
    chain = list(dict.fromkeys([Path(p).resolve() for p in previous] + [
        q for p in previous for q in earlier_runs(Path(p)) if q.is_dir()]))
    detections = gpd.read_parquet(files.detections).to_crs("EPSG:4326")
    coverage = gpd.read_parquet(files.coverage).to_crs("EPSG:4326")
    mapping = carry_ids(detections, date, coverage, tolerance_m, chain)
    if mapping:
        detections["site_id"] = detections["site_id"].astype(str).map(lambda s: mapping.get(s, s))
        with atomic_path(files.detections) as tmp:
            detections.to_parquet(tmp, index=False)
        for path in sorted(files.tiles.glob("*.json")) if files.tiles.is_dir() else []:
            if path.name == "manifest.jsonl":
                continue
            result = read_tile_result(path)
            if any(d.site_id in mapping for d in result.detections):
                moved = tuple(replace(d, site_id=mapping.get(d.site_id, d.site_id))
                              for d in result.detections)
                write_json(path, replace(result, detections=moved).to_json())
    record_links(files.root, chain)
    log.info("%d lead(s) of %s found again in earlier runs keep their site ids", len(mapping), files.root)
    return len(mapping)
