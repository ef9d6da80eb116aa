"""Reading what a run folder says about its sites: detection facts, positions, and optional risk.

Review imports no other fieldtruth room: it reads the run folder's GeoParquet files with pyarrow and
decodes their WKB geometries with shapely, following the run-folder contract's column names.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import shapely

from fieldtruth.review.errors import DetectionsFormatError
from fieldtruth.runfiles import RunFiles

log = logging.getLogger(__name__)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else number


def geometry_column(path: Path) -> str:
    """Return the primary geometry column named in a GeoParquet's ``geo`` metadata (or ``geometry``)."""
    meta = pq.read_schema(path).metadata or {}
    try:
        return str(json.loads(meta[b"geo"])["primary_column"])
    except (KeyError, ValueError, TypeError):
        return "geometry"


def point_of(geom: shapely.Geometry | None) -> tuple[float, float] | None:
    """Return ``(lon, lat)`` of a site's geometry: the point itself, or the centroid of a box or polygon."""
    if geom is None or geom.is_empty:
        return None
    centre = geom if geom.geom_type == "Point" else geom.centroid
    return float(centre.x), float(centre.y)


def read_table_rows(path: Path) -> list[dict[str, Any]]:
    """Return a GeoParquet's rows as dicts; the geometry becomes a shapely geometry (EPSG:4326)."""
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise DetectionsFormatError(
            f"expected a GeoParquet at {str(path)!r}; reading it failed: {exc}. Run `fieldtruth scan` again."
        ) from exc
    geom = geometry_column(path)
    columns = table.to_pydict()
    if geom in columns:
        columns[geom] = list(shapely.from_wkb(columns[geom]))
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


@dataclass(frozen=True)
class SiteFacts:
    """What a run's detections say about one site (the run-folder contract's columns), and where it is.

    Attributes:
        site_id: the stable site id.
        label: the class detected.
        score: the detector's score.
        scene_id: the scene(s) it was found in.
        acquired: the acquisition date (or range).
        detector: the detector's name.
        bundle_sha256: the detector bundle's sha256.
        tile_id: the tile it was found in.
        lon: longitude of its point (EPSG:4326); None when the detection has no geometry.
        lat: latitude of its point.
    """

    site_id: str
    label: str
    score: float
    scene_id: str | None = None
    acquired: str | None = None
    detector: str | None = None
    bundle_sha256: str | None = None
    tile_id: str | None = None
    lon: float | None = None
    lat: float | None = None


def site_facts(run_dir: Path) -> dict[str, SiteFacts]:
    """Return site_id -> the facts ``detections.parquet`` holds about the site, with its point's lon and lat.

    Raises:
        DetectionsFormatError: the file cannot be read, or lacks ``site_id``, ``label`` or ``score``.
    """
    path = RunFiles(run_dir).detections
    facts: dict[str, SiteFacts] = {}
    for row in read_table_rows(path):
        missing = [c for c in ("site_id", "label", "score") if row.get(c) is None]
        if missing:
            raise DetectionsFormatError(
                f"expected {missing} in every row of {str(path)!r}; got {row!r}. Run `fieldtruth scan` again."
            )
        lon, lat = point_of(row.get("geometry")) or (None, None)
        text = {c: None if row.get(c) is None else str(row[c])
                for c in ("scene_id", "acquired", "detector", "bundle_sha256", "tile_id")}
        site = SiteFacts(
            site_id=str(row["site_id"]), label=str(row["label"]), score=float(row["score"]), **text,
            lon=lon, lat=lat,
        )
        facts[site.site_id] = site
    return facts


def site_risk(run_dir: Path, facts: dict[str, SiteFacts]) -> dict[str, float]:
    """Return site_id -> risk from ``risk.parquet`` when the run has one (empty dict otherwise).

    The file may give ``risk`` per ``site_id``, or a risk per cell polygon (``geometry`` with ``risk`` or
    ``score``), in which case a site takes the highest risk of the cells covering its point.
    """
    path = RunFiles(run_dir).risk
    if not path.exists():
        return {}
    rows = read_table_rows(path)
    column = "risk" if rows and "risk" in rows[0] else "score"
    if not rows or column not in rows[0]:
        log.warning("%s has no 'risk' or 'score' column; ordering by score only", path)
        return {}
    values = [(r, _number(r[column])) for r in rows]
    if "site_id" in rows[0]:
        return {str(r["site_id"]): v for r, v in values if v is not None}
    cells = [(r["geometry"], v) for r, v in values if r.get("geometry") is not None and v is not None]
    risk: dict[str, float] = {}
    for site_id, site in facts.items():
        if site.lon is None or site.lat is None:
            continue
        point = shapely.Point(site.lon, site.lat)
        hits = [value for cell, value in cells if cell.covers(point)]
        if hits:
            risk[site_id] = max(hits)
    return risk
