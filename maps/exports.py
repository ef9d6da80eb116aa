"""Exports of the restricted sites for field tools: GeoPackage, KML, and the review queue as CSV.

These files carry exact site locations and are NOT encrypted: they are written readable by the owner
only (0600) and belong on the verification team's devices. Every row says it is an unverified lead
unless the ledger records a decision.
"""

from __future__ import annotations

import csv
import logging
import os
import warnings
from pathlib import Path
from xml.sax.saxutils import escape

import geopandas as gpd

from fieldtruth.atomicfile import atomic_path
from fieldtruth.maps.errors import MapInputError
from fieldtruth.maps.leads import DETECTION_COLUMNS, _review_statuses, read_layer
from fieldtruth.maps.qgisstyles import risk_style, sites_style, write_layer_styles
from fieldtruth.runfiles import RunFiles

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("gpkg", "kml", "csv")
STATEMENT = "Unverified lead, not a finding: human verification is required before any action."
#: Columns of the queue CSV left blank for the verification team to fill in: the file then goes back
#: as it is to `fieldtruth review import` (rows left blank are skipped). ``lat``/``lon`` are the lead's;
#: ``visit_latitude``/``visit_longitude``/``visit_accuracy_m`` where the person stood, if they record it.
DECISION_COLUMNS = ("decision", "method", "reviewer", "note", "visited_at", "visit_latitude",
                    "visit_longitude", "visit_accuracy_m")
QUEUE_COLUMNS = ("site_id", "status", "label", "score", "lat", "lon", "acquired", "scene_id", "detector",
                 *DECISION_COLUMNS, "decide_command")


def sites_table(run_dir: Path) -> gpd.GeoDataFrame:
    """The run's detections (EPSG:4326) with review ``status`` and the command to record a decision,
    highest score first among unverified sites (the verification queue order)."""
    run_dir = Path(run_dir)
    sites = read_layer(RunFiles(run_dir).detections, DETECTION_COLUMNS)
    statuses = _review_statuses(run_dir, sites)
    sites = sites.assign(
        status=[statuses.get(str(s), "unverified") for s in sites["site_id"]],
        lat=sites.geometry.y.round(6), lon=sites.geometry.x.round(6), note=STATEMENT,
        decide_command=[f"fieldtruth review decide {run_dir.name} {s} "
                        "--decision ... --method ... --reviewer ID"
                        for s in sites["site_id"]],
    )
    order = sites.assign(_u=sites["status"] != "unverified").sort_values(["_u", "score"],
                                                                         ascending=[True, False])
    return order.drop(columns="_u").reset_index(drop=True)


def export_sites(run_dir: Path, fmt: str, out: Path) -> Path:
    """Write the restricted sites as ``gpkg`` (layers ``sites`` and ``risk_cells``, styled for QGIS: see
    :func:`write_gpkg`), ``kml`` or the queue as ``csv``.

    Args:
        run_dir: The run folder (detections.parquet and review.sqlite).
        fmt: One of :data:`FORMATS`.
        out: The file to write (replaced if present; mode 0600).

    Returns:
        ``out``.

    Raises:
        MapInputError: If ``fmt`` is unknown.
    """
    if fmt not in FORMATS:
        raise MapInputError(f"expected an export format in {FORMATS}; got {fmt!r}.")
    sites = sites_table(run_dir)
    out = Path(out)
    old = os.umask(0o077)  # GDAL replaces the temporary file: keep every file it makes owner-only too
    try:
        with atomic_path(out, mode=0o600) as tmp, warnings.catch_warnings():
            warnings.filterwarnings("ignore", "The filename extension should be", RuntimeWarning)  # .tmp
            warnings.filterwarnings("ignore", ".*non conformant file extension", RuntimeWarning)  # appending
            if fmt == "gpkg":
                write_gpkg(run_dir, sites, tmp)
            elif fmt == "kml":
                tmp.write_text(kml(sites), encoding="utf-8")
            else:
                with tmp.open("w", newline="", encoding="utf-8") as handle:
                    writer = csv.writer(handle)
                    writer.writerow(QUEUE_COLUMNS)
                    for row in sites.itertuples(index=False):
                        writer.writerow([_queue_cell(row, c) for c in QUEUE_COLUMNS])
    finally:
        os.umask(old)
    log.info("exported %d site(s) as %s to %s (unencrypted, exact locations)", len(sites), fmt, out)
    return out


def write_gpkg(run_dir: Path, sites: gpd.GeoDataFrame, out: Path) -> None:
    """The GeoPackage export: layer ``sites`` (the leads), ``risk_cells`` when the run has risk cells, and
    their QGIS styles (review status colours, risk bands), so the file opens styled."""
    keep = ["site_id", "status", "label", "score", "acquired", "scene_id", "detector", "note", "geometry"]
    sites[keep].to_file(out, layer="sites", driver="GPKG", engine="pyogrio")
    styles = [sites_style("sites")]
    risk = RunFiles(Path(run_dir)).risk
    if risk.is_file():
        gpd.read_parquet(risk).to_crs("EPSG:4326").to_file(out, layer="risk_cells", driver="GPKG",
                                                           engine="pyogrio")
        styles.append(risk_style("risk_cells"))
    write_layer_styles(out, styles)


def _queue_cell(row: object, column: str) -> object:
    """A cell of the queue CSV: blank in the decision columns, neutralised elsewhere."""
    return "" if column in DECISION_COLUMNS else _cell(getattr(row, column))


def _cell(value: object) -> object:
    """Neutralise spreadsheet formulas (a value starting with = + - @ is prefixed with ')."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def kml(sites: gpd.GeoDataFrame) -> str:
    """A KML 2.2 document of the sites (points), every text XML-escaped."""
    marks = []
    for row in sites.itertuples(index=False):
        rows = "".join(
            f'<Data name="{escape(k, {chr(34): "&quot;"})}">'
            f'<value>{escape(str(getattr(row, k)))}</value></Data>'
            for k in ("site_id", "status", "label", "score", "acquired", "scene_id", "detector", "note")
        )
        marks.append(
            f"<Placemark><name>{escape(str(row.site_id))} ({escape(str(row.status))})</name>"
            f"<ExtendedData>{rows}</ExtendedData>"
            f"<Point><coordinates>{row.lon:.6f},{row.lat:.6f}</coordinates></Point></Placemark>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
        f"<name>fieldtruth leads</name><description>{escape(STATEMENT)}</description>"
        + "".join(marks) + "</Document></kml>\n"
    )
