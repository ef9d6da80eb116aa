"""The leads map of a run: one offline HTML file for field teams (restricted) or partners (shared).

Restricted tier: every detection as a circle marker coloured by its review status from the run's
ledger, with a popup saying what it is and how to record a decision. Shared tier: no points, only the
number of leads per ~5 km equal-area cell, cells under 3 suppressed. Both tiers show the imagery
coverage (areas without imagery hatched and labelled: not covered is NOT low risk), a legend, a layer
control, and a banner: these are unverified leads, not findings.
"""

from __future__ import annotations

import html
import json
import logging
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd

from fieldtruth.maps.cells import DEFAULT_CELL_M, DEFAULT_MIN_COUNT, aggregate_cells
from fieldtruth.maps.errors import MapInputError, RunFolderError
from fieldtruth.maps.layers import (
    PAGE_CSS,
    JsonPoints,
    JsonShapes,
    OfflineAttribution,
    PointItem,
    escape_rows,
    hatch_swatch,
    page_furniture,
    swatch,
)
from fieldtruth.maps.offline import RawHTML, finalise_html, offline_map
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.records import STATUSES

log = logging.getLogger(__name__)

TIERS: tuple[str, ...] = ("restricted", "shared")
BANNER = (
    "Unverified leads: every point is a lead, not a finding; "
    "human verification is required before any action."
)
NOT_COVERED = "not covered - no imagery, NOT low risk"
STATUS_COLOURS: dict[str, str] = {
    "unverified": "#ff8c00",
    "confirmed": "#d7191c",
    "field_visit": "#2c7bb6",
    "uncertain": "#8e44ad",
    "rejected": "#8c8c8c",
}
DETECTION_COLUMNS = (
    "site_id",
    "label",
    "score",
    "scene_id",
    "acquired",
    "detector",
    "bundle_sha256",
    "tile_id",
)
COVERAGE_COLUMNS = ("tile_id", "valid_fraction", "status", "error")
MAX_COVERAGE_LABELS = 40


def build_leads_map(run_dir: Path, out: Path | None = None, tier: str = "restricted") -> Path:
    """Write the run's leads map as one self-contained HTML file that makes no network request.

    Args:
        run_dir: A run folder with ``detections.parquet`` and ``coverage.parquet``. Its
            ``review.sqlite`` is opened (created if absent) and every detection registered.
        out: The HTML file to write; default ``run_dir / "maps" / f"leads_{tier}.html"``.
        tier: ``"restricted"`` (exact points; for the verification team only) or ``"shared"``
            (counts per ~5 km cell, cells with fewer than 3 leads suppressed; no points).

    Returns:
        The path written.

    Raises:
        MapInputError: If ``tier`` is unknown or a run-folder file lacks contract columns.
        RunFolderError: If a run-folder file is missing.
        fieldtruth.review.errors.LedgerTamperedError: If the review ledger does not verify.
    """
    if tier not in TIERS:
        raise MapInputError(
            f"expected tier to be one of {TIERS}; got {tier!r}. Use 'restricted' or 'shared'."
        )
    run_dir = Path(run_dir)
    detections = _read_layer(run_dir / "detections.parquet", DETECTION_COLUMNS)
    coverage = _read_layer(run_dir / "coverage.parquet", COVERAGE_COLUMNS)
    statuses = _review_statuses(run_dir)
    fmap = offline_map(control_scale=True, zoom_start=11, location=_centre(coverage, detections))
    fmap.get_root().header.add_child(RawHTML(PAGE_CSS), name="ft_css")
    _add_coverage(fmap, coverage)
    if tier == "restricted":
        _add_leads(fmap, detections, statuses, run_dir.name)
        legend = _restricted_legend(statuses)
        banner_note = "RESTRICTED map: exact lead locations. Keep it within the verification team."
    else:
        cells = _add_cells(fmap, detections, statuses)
        legend = _shared_legend(len(cells))
        banner_note = (
            f"SHARED map: number of leads per ~{DEFAULT_CELL_M / 1000:g} km cell only; "
            f"cells with fewer than {DEFAULT_MIN_COUNT} leads are hidden."
        )
    legend += _run_legend(run_dir)
    for name, element in page_furniture(
        f"{html.escape(BANNER)}<small>{html.escape(banner_note)}</small>", legend
    ):
        fmap.get_root().html.add_child(element, name=name)
    fmap.add_child(OfflineAttribution())
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.fit_bounds(_bounds(coverage, detections if tier == "restricted" else None))
    page = finalise_html(fmap.get_root().render())
    out = Path(out) if out is not None else run_dir / "maps" / f"leads_{tier}.html"
    _write_private(out, page, private=tier == "restricted")
    log.info("wrote %s leads map of %d detection(s) to %s", tier, len(detections), out)
    return out


def _read_layer(path: Path, columns: tuple[str, ...]) -> gpd.GeoDataFrame:
    """Read a GeoParquet of the run folder, check its columns, return it in EPSG:4326."""
    if not path.is_file():
        raise RunFolderError(
            f"expected {path.name} in the run folder {str(path.parent)!r}; it is missing. "
            "Run `fieldtruth scan` into that folder first."
        )
    try:
        frame = gpd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise MapInputError(
            f"expected a GeoParquet file at {str(path)!r}; reading it failed: {exc}."
        ) from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MapInputError(
            f"expected columns {list(columns)} in {str(path)!r}; missing {missing!r}. "
            "Re-run the scan with this fieldtruth version."
        )
    if frame.crs is None:
        raise MapInputError(f"expected {str(path)!r} to declare its CRS (EPSG:4326); it has none.")
    if frame.crs.to_epsg() != 4326:
        log.warning("%s is in %s, not EPSG:4326; reprojecting for the map", path.name, frame.crs)
        frame = frame.to_crs("EPSG:4326")
    return frame


def _review_statuses(run_dir: Path) -> dict[str, str]:
    """Register the run's sites in its ledger, check the chain, and return site_id -> status."""
    with Ledger.open(run_dir / "review.sqlite") as ledger:
        ledger.register_sites(run_dir / "detections.parquet")
        ledger.verify().raise_for_error()
        return ledger.statuses()


def _centre(coverage: gpd.GeoDataFrame, detections: gpd.GeoDataFrame) -> list[float]:
    west, south, east, north = _bounds_xy(coverage, detections)
    return [(south + north) / 2, (west + east) / 2]


def _bounds_xy(coverage: gpd.GeoDataFrame, detections: gpd.GeoDataFrame | None) -> tuple[float, ...]:
    frames = [f for f in (coverage, detections) if f is not None and not f.empty]
    if not frames:
        return (-180.0, -60.0, 180.0, 75.0)
    boxes = [f.total_bounds for f in frames]
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _bounds(coverage: gpd.GeoDataFrame, detections: gpd.GeoDataFrame | None) -> list[list[float]]:
    west, south, east, north = _bounds_xy(coverage, detections)
    return [[south, west], [north, east]]


def _coverage_style(status: str) -> tuple[dict[str, object], str]:
    """Leaflet style and tooltip headline for a coverage tile status."""
    if status == "covered":
        return {
            "color": "#4d7d4d",
            "weight": 1,
            "fill": False,
            "interactive": False,
        }, "covered: imagery scanned"
    if status == "partial":
        return (
            {"color": "#555", "weight": 1, "fillOpacity": 1, "className": "ft-partial"},
            "partial: parts of this tile had no valid imagery - those parts are NOT low risk",
        )
    headline = NOT_COVERED if status == "not covered" else f"scan failed - {NOT_COVERED}"
    return {"color": "#222", "weight": 1.5, "fillOpacity": 1, "className": "ft-nocov"}, headline


def _add_coverage(fmap: folium.Map, coverage: gpd.GeoDataFrame) -> None:
    """Tiles outlined or hatched by status, and a permanent label on each area without imagery."""
    group = folium.FeatureGroup(name="Imagery coverage", show=True).add_to(fmap)
    styles, tips = [], []
    for row in coverage.itertuples(index=False):
        style, headline = _coverage_style(str(row.status))
        rows = [
            ("tile", row.tile_id),
            ("status", row.status),
            ("valid fraction", f"{float(row.valid_fraction):.0%}"),
        ]
        if row.error:
            rows.append(("error", row.error))
        styles.append(style)
        tips.append(f"<b>{html.escape(headline)}</b>{escape_rows(rows)}")
    group.add_child(JsonShapes(coverage, styles, tips))
    uncovered = coverage[coverage["status"].isin(["not covered", "failed"])]
    if uncovered.empty:
        return
    areas = gpd.GeoDataFrame(
        geometry=list(getattr(uncovered.union_all(), "geoms", [uncovered.union_all()])), crs=coverage.crs
    )
    if len(areas) > MAX_COVERAGE_LABELS:
        log.info("%d uncovered areas; labelling only the %d largest", len(areas), MAX_COVERAGE_LABELS)
        areas = areas.assign(a=areas.to_crs("EPSG:6933").area).nlargest(MAX_COVERAGE_LABELS, "a")
    label_style = {"stroke": False, "fill": False, "interactive": False}
    group.add_child(
        JsonShapes(
            areas,
            [label_style] * len(areas),
            [html.escape(NOT_COVERED)] * len(areas),
            {"permanent": True, "direction": "center", "className": "ft-nocov-label"},
        )
    )


def _add_leads(
    fmap: folium.Map, detections: gpd.GeoDataFrame, statuses: dict[str, str], run_name: str
) -> None:
    """One layer per review status, each detection a circle marker with an escaped popup."""
    by_status: dict[str, list[PointItem]] = {s: [] for s in STATUSES}
    for row in detections.itertuples(index=False):
        status = statuses.get(str(row.site_id), "unverified")
        popup = _popup_html(row, status, run_name)
        style = {
            "radius": 7,
            "color": "#1a1a1a",
            "weight": 1.5,
            "fillColor": STATUS_COLOURS[status],
            "fillOpacity": 0.9,
            "className": f"ft-lead ft-status-{status}",
        }
        tip = html.escape(f"{row.label} ({status}) - score {float(row.score):.2f}")
        by_status[status].append(PointItem(row.geometry.y, row.geometry.x, style, popup, tip))
    for status in STATUSES:
        items = by_status[status]
        group = folium.FeatureGroup(name=f"Leads: {status.replace('_', ' ')} ({len(items)})", show=True)
        group.add_child(JsonPoints(items))
        group.add_to(fmap)


def _popup_html(row: Any, status: str, run_name: str) -> str:
    rows = [
        ("class", row.label),
        ("score", f"{float(row.score):.3f}"),
        ("status", status),
        ("acquired", row.acquired),
        ("scene", row.scene_id),
        ("detector", row.detector),
        ("bundle", str(row.bundle_sha256)[:16]),
        ("site", row.site_id),
    ]
    command = (
        f"fieldtruth review decide {run_name} {row.site_id} "
        "--decision confirmed|rejected|uncertain|field_visit "
        "--method imagery|field|other --reviewer YOUR_ID --note '...'"
    )
    return (
        f"<b>Lead - not a finding ({html.escape(status)})</b>{escape_rows(rows)}"
        "<div>Record what you verified:</div>"
        f'<code class="ft-cmd">{html.escape(command)}</code>'
    )


def _add_cells(fmap: folium.Map, detections: gpd.GeoDataFrame, statuses: dict[str, str]) -> gpd.GeoDataFrame:
    """Counts of leads (rejected ones excluded) per equal-area cell, small counts suppressed."""
    rejected = detections["site_id"].map(lambda s: statuses.get(str(s)) == "rejected")
    cells = aggregate_cells(detections[~rejected.astype(bool)])
    group = folium.FeatureGroup(name=f"Leads per ~{DEFAULT_CELL_M / 1000:g} km cell ({len(cells)})").add_to(
        fmap
    )
    top = max([int(c) for c in cells["count"]] or [1])
    styles = [
        {"color": "#7a1212", "weight": 1, "fillColor": "#d7191c", "fillOpacity": 0.15 + 0.6 * int(c) / top}
        for c in cells["count"]
    ]
    tips = [
        html.escape(f"{int(c)} unverified or reviewed leads in this cell (not findings)")
        for c in cells["count"]
    ]
    group.add_child(JsonShapes(cells, styles, tips))
    return cells


def _coverage_legend() -> str:
    return (
        "<h4>Imagery coverage</h4>"
        f"{swatch('transparent')}covered (scanned)<br>"
        f"{hatch_swatch('ft-hatch-light')}partial: gaps are NOT low risk<br>"
        f"{hatch_swatch('ft-hatch-dark')}{html.escape(NOT_COVERED)}<br>"
    )


def _restricted_legend(statuses: dict[str, str]) -> str:
    counts = dict.fromkeys(STATUSES, 0)
    for status in statuses.values():
        counts[status] += 1
    rows = "".join(
        f"{swatch(STATUS_COLOURS[s], round_=True)}{html.escape(s.replace('_', ' '))}: {counts[s]}<br>"
        for s in STATUSES
    )
    return f"<h4>Leads by review status</h4>{rows}{_coverage_legend()}"


def _shared_legend(n_cells: int) -> str:
    return (
        f"<h4>Leads per ~{DEFAULT_CELL_M / 1000:g} km cell</h4>"
        f"{swatch('#d7191c')}darker = more leads ({n_cells} cells shown)<br>"
        f"Cells with fewer than {DEFAULT_MIN_COUNT} leads are hidden: an empty area is not evidence "
        "that no sites exist. Rejected leads are not counted.<br>" + _coverage_legend()
    )


def _run_legend(run_dir: Path) -> str:
    """Detector provenance and held-out metrics from the run's model card, where present."""
    lines = [
        f"Run {html.escape(run_dir.name)}, map made "
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M')} UTC"
    ]
    card_path = run_dir / "model_card.json"
    try:
        card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
    except (OSError, ValueError):
        log.warning("could not read %s; the legend will not show model metrics", card_path)
        card = {}
    metrics = card.get("metrics") if isinstance(card, dict) else None
    if isinstance(metrics, dict):
        shown = [f"{html.escape(str(k))} {v:.2f}" for k, v in metrics.items() if isinstance(v, (int, float))][
            :4
        ]
        if shown:
            lines.append("Detector on held-out scenes: " + ", ".join(shown))
    return "<hr>" + "<br>".join(lines)


def _write_private(out: Path, page: str, *, private: bool) -> None:
    """Write atomically; restricted maps are readable by the owner only (0600)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(page)
        os.chmod(tmp, 0o600 if private else 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
