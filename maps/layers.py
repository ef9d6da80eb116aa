"""The data of a map's layers as plain JSON-ready values; the page script draws them.

Nothing here makes HTML. Every string from a run or a dataset travels as a JSON string value
(encoded by :func:`fieldtruth.maps.offline.script_json`, which also escapes ``<``, ``>`` and ``&``)
and the page puts it on screen with ``textContent``, so it can only ever appear as text.
Coordinates are EPSG:4326, rounded to 6 decimals (~0.1 m).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import mapping

log = logging.getLogger(__name__)

STATUS_COLOURS: dict[str, str] = {
    "unverified": "#ff8c00",
    "confirmed": "#d7191c",
    "field_visit": "#2c7bb6",
    "uncertain": "#8e44ad",
    "rejected": "#8c8c8c",
}
RISK_COLOURS: dict[str, str] = {
    "low": "#ffd84d",
    "medium": "#f46d43",
    "high": "#a50026",
    "not covered": "#6b6b6b",
}
"""Fill of each risk band (drawn at :data:`RISK_OPACITY`); the page draws "not covered" hatched. Chosen so
that, over the map's background, each band differs from the next by a CIEDE2000 distance of at least 15
(tests/maps/test_colours.py)."""
RISK_OPACITY = 0.6
RISK_OPACITY_OVER_IMAGERY = 0.3
"""The restricted map draws cells lighter: the imagery under them is the evidence a reviewer looks at."""
MAP_BACKGROUND = "#eef0ea"
"""The page's background where no imagery is drawn (``.leaflet-container`` in fieldtruth-map.css)."""
NOT_COVERED = "not covered - no imagery, NOT low risk"
MAX_COVERAGE_LABELS = 40
MAX_SECTOR_FIELDS = 4
DIGITS = 6


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, DIGITS)
    if isinstance(value, (list, tuple)):
        return [_round(v) for v in value]
    return value


def _text(value: Any) -> str | None:
    """A cell value as display text (None for missing)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value)


def features(frame: gpd.GeoDataFrame, props: list[Mapping[str, Any]]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of ``frame``'s geometries with the given properties."""
    out = []
    for geom, prop in zip(frame.geometry, props, strict=True):
        if geom is None or geom.is_empty:
            continue
        shape = mapping(geom)
        out.append({"type": "Feature", "geometry": {"type": shape["type"],
                    "coordinates": _round(shape["coordinates"])}, "properties": dict(prop)})
    return {"type": "FeatureCollection", "features": out}


def coverage_layer(coverage: gpd.GeoDataFrame) -> dict[str, Any]:
    """Coverage tiles with status, and the merged areas without imagery to label ``not covered``."""
    props = [
        {"tile": _text(r.tile_id), "status": _text(r.status), "valid": float(r.valid_fraction or 0.0),
         "error": _text(r.error)}
        for r in coverage.itertuples(index=False)
    ]
    uncovered = coverage[coverage["status"].isin(["not covered", "failed"])]
    labels: dict[str, Any] = {"type": "FeatureCollection", "features": []}
    if not uncovered.empty:
        merged = uncovered.union_all()
        areas = gpd.GeoDataFrame(geometry=list(getattr(merged, "geoms", [merged])), crs=coverage.crs)
        if len(areas) > MAX_COVERAGE_LABELS:
            log.info("%d uncovered areas; labelling the %d largest", len(areas), MAX_COVERAGE_LABELS)
            areas = areas.assign(a=areas.to_crs("EPSG:6933").area).nlargest(MAX_COVERAGE_LABELS, "a")
        labels = features(areas, [{"label": NOT_COVERED}] * len(areas))
    return {"tiles": features(coverage, props), "labels": labels}


def risk_layer(cells: gpd.GeoDataFrame) -> dict[str, Any]:
    """Risk cells (``cell_id``, ``score``, ``band``, ``explanation``) from the risk room."""
    props = []
    for row in cells.itertuples(index=False):
        score = getattr(row, "score", None)
        props.append({
            "cell": _text(getattr(row, "cell_id", None)),
            "band": _text(getattr(row, "band", None)) or "not covered",
            "score": None if score is None or pd.isna(score) else round(float(score), 3),
            "why": _text(getattr(row, "explanation", None)),
        })
    return features(cells, props)


def count_layer(cells: gpd.GeoDataFrame) -> dict[str, Any]:
    """Cells of :func:`fieldtruth.maps.cells.aggregate_cells` (``cell_id``, ``count``)."""
    return features(cells, [{"cell": _text(r.cell_id), "count": int(r.count)}
                            for r in cells.itertuples(index=False)])


LEAD_FIELDS = (
    "lat", "lon", "status", "site", "label", "score", "acquired", "scene", "detector", "chip",
    "seq", "cellBand", "firstSeen", "history",
)


def cell_bands(detections: gpd.GeoDataFrame, cells: gpd.GeoDataFrame | None) -> list[str | None]:
    """The band of the risk cell holding each detection (None outside every cell, or without cells)."""
    if cells is None or cells.empty or "band" not in cells.columns:
        return [None] * len(detections)
    points = gpd.GeoDataFrame(geometry=detections.geometry.to_numpy(), crs=detections.crs).to_crs(cells.crs)
    joined = gpd.sjoin(points, cells[["band", cells.geometry.name]], how="left", predicate="within")
    band = joined[~joined.index.duplicated()]["band"].reindex(range(len(detections)))
    return [_text(b) for b in band]


def lead_rows(
    detections: gpd.GeoDataFrame, statuses: Mapping[str, str], chips: Mapping[str, str],
    basis: Mapping[str, int] | None = None, bands: list[str | None] | None = None,
    first: Mapping[str, str] | None = None, history: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Detections as columnar rows (``fields`` + ``rows``).

    Each row has the review status, the chip URI, the ``seq`` of the site's newest ledger entry (0 if
    none), the band of the risk cell the lead lies in (``bands``, in the order of ``detections``), the
    date the site was first seen (``first``) and the decision carried from an earlier run (``history``).
    """
    basis, first, history = basis or {}, first or {}, history or {}
    lat = np.round(detections.geometry.y.to_numpy(), DIGITS)
    lon = np.round(detections.geometry.x.to_numpy(), DIGITS)
    rows = []
    for i, row in enumerate(detections.itertuples(index=False)):
        site = str(row.site_id)
        rows.append([
            float(lat[i]), float(lon[i]), statuses.get(site, "unverified"), site, _text(row.label),
            round(float(row.score), 4), _text(row.acquired), _text(row.scene_id), _text(row.detector),
            chips.get(site), int(basis.get(site, 0)), bands[i] if bands else None,
            first.get(site), history.get(site),
        ])
    return {"fields": list(LEAD_FIELDS), "rows": rows}


def sector_rows(sectors: gpd.GeoDataFrame) -> dict[str, Any]:
    """Sector sites (points; polygons by their centroid) with up to four text columns."""
    columns = [c for c in sectors.columns if c != sectors.geometry.name][:MAX_SECTOR_FIELDS]
    points = sectors.geometry.representative_point()
    rows = []
    for i, row in enumerate(sectors[columns].itertuples(index=False)):
        point = points.iloc[i]
        if point is None or point.is_empty:
            continue
        rows.append([round(point.y, DIGITS), round(point.x, DIGITS), *[_text(v) for v in row]])
    return {"fields": ["lat", "lon", *[str(c) for c in columns]], "rows": rows}


def date_range(dates: list[str | None]) -> str | None:
    """``"first/last"`` ISO dates (or one date), None if none is known."""
    clean = sorted({str(d)[:10] for d in dates if d})
    if not clean:
        return None
    return clean[0] if clean[0] == clean[-1] else f"{clean[0]}/{clean[-1]}"
