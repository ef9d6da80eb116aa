"""Reading what a run folder says about its sites: detection facts, positions, and optional risk.

Review imports no other fieldtruth room: it reads the run folder's GeoParquet files with pyarrow and
decodes their WKB geometries with shapely, following the run-folder contract's column names.
"""

from __future__ import annotations

import json
import logging
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


def site_facts(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Return site_id -> every column of ``detections.parquet`` plus ``lon`` and ``lat`` of its point."""
    facts: dict[str, dict[str, Any]] = {}
    for row in read_table_rows(RunFiles(run_dir).detections):
        geom = row.pop("geometry", None)
        if geom is not None and not geom.is_empty:
            centre = geom if geom.geom_type == "Point" else geom.centroid
            row["lon"], row["lat"] = float(centre.x), float(centre.y)
        facts[str(row["site_id"])] = row
    return facts


def site_risk(run_dir: Path, facts: dict[str, dict[str, Any]]) -> dict[str, float]:
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
    for site_id, row in facts.items():
        if "lon" not in row:
            continue
        point = shapely.Point(row["lon"], row["lat"])
        hits = [value for cell, value in cells if cell.covers(point)]
        if hits:
            risk[site_id] = max(hits)
    return risk
