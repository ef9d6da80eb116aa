"""The leads map of a run: one offline HTML file for field teams (restricted) or partners (shared).

Restricted tier: every detection coloured by its review status from the run's ledger (clustered when
many), a popup with what it is, the detector's tested precision/recall, an image chip, its coordinates
and a form to record a decision on the device (:mod:`fieldtruth.maps.decide`: exported as a signed
decisions file); risk cells; sector sites; coverage with areas without imagery hatched and labelled; a
quicklook of the scanned imagery as background. Encrypted by default (:mod:`fieldtruth.maps.crypto`).
Shared tier: risk cells only (``risk_shared.geojson``, else lead counts per cell with small counts
suppressed), never a point, chip or site attribute. Both: legend, layer control, imagery dates, the
model card, town names (:mod:`fieldtruth.maps.places`), and the banner: these are unverified leads that
need human verification before any action.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import geopandas as gpd

from fieldtruth.atomicfile import write_text
from fieldtruth.maps import layers
from fieldtruth.maps.cells import DEFAULT_CELL_M, DEFAULT_MIN_COUNT, aggregate_cells
from fieldtruth.maps.crypto import check_passphrase, seal
from fieldtruth.maps.decide import decide_payload, site_basis
from fieldtruth.maps.errors import MapInputError, RunFolderError
from fieldtruth.maps.layers import NOT_COVERED, STATUS_COLOURS
from fieldtruth.maps.offline import finalise_html, render_page, script_json
from fieldtruth.maps.places import town_layer
from fieldtruth.maps.public import public_card, without_local_names
from fieldtruth.maps.quicklook import quicklook, scene_refs, site_chips
from fieldtruth.maps.sincedates import first_seen
from fieldtruth.review.carried import carried_decisions, with_carried
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.records import STATUSES
from fieldtruth.runfiles import RunFiles

log = logging.getLogger(__name__)

__all__ = ["BANNER", "NOT_COVERED", "STATUS_COLOURS", "TIERS", "build_leads_map", "read_layer"]

TIERS: tuple[str, ...] = ("restricted", "shared")
BANNER = (
    "Unverified leads: every point is a lead, not a finding; "
    "human verification is required before any action."
)
PASSPHRASE_ENV = "FIELDTRUTH_PASSPHRASE"
ONLINE_BASEMAP = {
    "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
    "host": "https://tile.openstreetmap.org",
    "attribution": "(c) OpenStreetMap contributors",
}
BASEMAP_WARNING = (
    "Online basemap ON: viewing this map asks tile.openstreetmap.org for the tiles of the area on screen, "
    "which tells that server your IP address and where you are looking."
)
UNENCRYPTED_NOTE = "NOT ENCRYPTED (--no-encrypt): anyone who gets this file sees the exact lead locations."
DETECTION_COLUMNS = ("site_id", "label", "score", "scene_id", "acquired", "detector", "bundle_sha256",
                     "tile_id")
COVERAGE_COLUMNS = ("tile_id", "valid_fraction", "status", "error")
RISK_COLUMNS = ("cell_id",)


def build_leads_map(
    run_dir: Path,
    out: Path | None = None,
    tier: str = "restricted",
    *,
    passphrase: str | None = None,
    encrypt: bool = True,
    online_basemap: bool = False,
    chip_px: int = 48,
    quicklook_px: int = 2048,
) -> Path:
    """Write the run's leads map as one self-contained HTML file.

    Args:
        run_dir: A run folder with ``detections.parquet`` and ``coverage.parquet`` (and optionally
            ``run.json`` scenes, ``model_card.json``, ``risk.parquet``, ``risk_shared.geojson``,
            ``sectors.parquet``). Its ``review.sqlite`` is opened (created if absent).
        out: The HTML file; default ``run_dir / "maps" / f"leads_{tier}.html"``.
        tier: ``"restricted"`` (exact sites; verification team only) or ``"shared"`` (cells only).
        passphrase: Seals a restricted map; default ``$FIELDTRUTH_PASSPHRASE``.
        encrypt: Seal the restricted map (AES-GCM). False writes it readable by anyone with the file.
        online_basemap: Add OpenStreetMap tiles (the page then contacts that host; it says so).
        chip_px: Side of each site's image chip in scene pixels (0: no chips).
        quicklook_px: Longest side of the imagery quicklook (0: no quicklook).

    Returns:
        The path written (restricted maps with mode 0600).

    Raises:
        MapInputError: Unknown tier, missing passphrase, or a run-folder file without contract columns.
        RunFolderError: If a required run-folder file is missing.
        fieldtruth.review.errors.LedgerTamperedError: If the review ledger does not verify.
    """
    if tier not in TIERS:
        raise MapInputError(
            f"expected tier to be one of {TIERS}; got {tier!r}. Use 'restricted' or 'shared'.")
    run_dir = Path(run_dir)
    sealed = tier == "restricted" and encrypt
    if sealed:
        passphrase = check_passphrase(passphrase or os.environ.get(PASSPHRASE_ENV))
    files = RunFiles(run_dir)
    detections = read_layer(files.detections, DETECTION_COLUMNS)
    coverage = read_layer(files.coverage, COVERAGE_COLUMNS)
    statuses, history = _statuses_and_history(run_dir, detections)
    payload = _common(run_dir, detections, online_basemap)
    if tier == "restricted":
        payload.update(_restricted(run_dir, detections, coverage, statuses, chip_px, quicklook_px, history))
        payload["decide"] = decide_payload(run_dir, sealed=sealed)
        payload["riskOpacity"] = layers.RISK_OPACITY_OVER_IMAGERY
        note = "RESTRICTED map: exact lead locations. Keep it within the verification team."
        note += "" if sealed else " " + UNENCRYPTED_NOTE
    else:
        payload = without_local_names({**payload, **_shared(run_dir, detections, coverage, statuses)})
        note = "SHARED map: risk cells only; no site, point or image of a site."
    payload["towns"] = town_layer(payload.pop("extent", None) or payload["bounds"])
    data: dict[str, Any] = {"payload": payload}
    if sealed:
        data = {"sealed": seal(script_json(payload).encode("utf-8"), passphrase or "")}
    page = render_page(
        title=f"fieldtruth {tier} map", banner=BANNER, note=note,
        warning=BASEMAP_WARNING if online_basemap else None, data=data, sealed=sealed,
    )
    page = finalise_html(page, img_hosts=(ONLINE_BASEMAP["host"],) if online_basemap else ())
    out = Path(out) if out is not None else files.leads_map(tier)
    write_text(out, page, mode=0o600 if tier == "restricted" else 0o644)  # restricted: the owner only
    log.info("wrote %s map (%s) of %d detection(s) to %s", tier, "encrypted" if sealed else "plain",
             len(detections), out)
    return out


def read_layer(path: Path, columns: tuple[str, ...]) -> gpd.GeoDataFrame:
    """Read a GeoParquet of the run folder, check its columns, return it in EPSG:4326.

    Raises:
        RunFolderError: If the file is missing.
        MapInputError: If it cannot be read, lacks ``columns`` or declares no CRS.
    """
    if not path.is_file():
        raise RunFolderError(
            f"expected {path.name} in the run folder {str(path.parent)!r}; it is missing. "
            "Run `fieldtruth scan` into that folder first."
        )
    try:
        frame = gpd.read_parquet(path) if path.suffix == ".parquet" else gpd.read_file(path)
    except (OSError, ValueError) as exc:
        raise MapInputError(
            f"expected a GeoParquet/GeoJSON file at {str(path)!r}; reading it failed: {exc}.") from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MapInputError(
            f"expected columns {list(columns)} in {str(path)!r}; missing {missing!r}. "
            "Re-run the step that writes it with this fieldtruth version."
        )
    if frame.crs is None:
        raise MapInputError(f"expected {str(path)!r} to declare its CRS (EPSG:4326); it has none.")
    if frame.crs.to_epsg() != 4326:
        log.warning("%s is in %s, not EPSG:4326; reprojecting for the map", path.name, frame.crs)
        frame = frame.to_crs("EPSG:4326")
    return frame


def _review_statuses(run_dir: Path, detections: gpd.GeoDataFrame) -> dict[str, str]:
    """Register the run's sites in its ledger, check the chain, and return site_id -> status, with the
    decisions carried from earlier runs of the region (:mod:`fieldtruth.review.carried`)."""
    return _statuses_and_history(run_dir, detections)[0]


def _statuses_and_history(
    run_dir: Path, detections: gpd.GeoDataFrame,
) -> tuple[dict[str, str], dict[str, str]]:
    """:func:`_review_statuses`, and for sites whose shown status was carried, what was carried (without
    the reviewers' code names: a map travels to phones)."""
    with Ledger.of_run(run_dir) as ledger:
        ledger.verify().raise_for_error()
        statuses = ledger.statuses()
    scores = dict(zip(detections["site_id"].astype(str), detections["score"].astype(float), strict=True))
    carried = carried_decisions(run_dir, scores)
    history = {s: c.describe(reviewers=False) for s, c in carried.items() if statuses.get(s) == "unverified"}
    return with_carried(statuses, carried), history


def _json_file(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        log.warning("could not read %s; the map goes on without it", path)
        return {}
    return value if isinstance(value, dict) else {}


def _metrics(card: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(overall scalar metrics, per-class {precision, recall}) from a model card's ``metrics``."""
    metrics = card.get("metrics") if isinstance(card.get("metrics"), dict) else {}
    overall = metrics.get("overall") if isinstance(metrics.get("overall"), dict) else metrics
    flat = {str(k): v for k, v in overall.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for key in ("threshold", "average_precision"):
        if isinstance(metrics.get(key), (int, float)):
            flat.setdefault(key, metrics[key])
    per_class = {
        str(name): {k: v for k, v in scores.items() if k in ("precision", "recall")}
        for name, scores in (metrics.get("per_class") or {}).items() if isinstance(scores, dict)
    }
    return flat, per_class


def _common(run_dir: Path, detections: gpd.GeoDataFrame, online_basemap: bool) -> dict[str, Any]:
    run_json = _json_file(RunFiles(run_dir).run_json)
    card = _json_file(RunFiles(run_dir).model_card)
    flat, per_class = _metrics(card)
    dates = run_json.get("imagery_dates") or layers.date_range(
        [s.acquired for s in scene_refs(run_json)] or list(detections["acquired"])
    )
    return {
        "run": run_dir.name, "made": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "dates": str(dates) if dates else None, "notCovered": NOT_COVERED, "card": public_card(card) or None,
        "metrics": flat, "perClass": per_class,
        "riskColours": layers.RISK_COLOURS, "riskOpacity": layers.RISK_OPACITY,
        "basemap": {k: ONLINE_BASEMAP[k] for k in ("url", "attribution")} if online_basemap else None,
    }


def _restricted(
    run_dir: Path, detections: gpd.GeoDataFrame, coverage: gpd.GeoDataFrame, statuses: dict[str, str],
    chip_px: int, quicklook_px: int, history: dict[str, str],
) -> dict[str, Any]:
    files = RunFiles(run_dir)
    scenes = scene_refs(_json_file(files.run_json))
    sites = zip(detections["site_id"].astype(str), detections.geometry.x, detections.geometry.y, strict=True)
    chips = site_chips(scenes, sites, size=chip_px) if chip_px > 0 else {}
    look = quicklook(scenes, max_px=quicklook_px) if quicklook_px > 0 else None
    counts = dict.fromkeys(STATUSES, 0)
    for site in detections["site_id"].astype(str):
        counts[statuses.get(site, "unverified")] += 1
    risk = read_layer(files.risk, RISK_COLUMNS) if files.risk.is_file() else None
    bands = layers.cell_bands(detections, risk)
    first = first_seen(run_dir, detections["site_id"].astype(str))
    part: dict[str, Any] = {
        "leads": layers.lead_rows(detections, statuses, chips, site_basis(run_dir), bands, first.dates,
                                  history),
        "counts": counts, "runDates": first.run_dates,
        "coverage": layers.coverage_layer(coverage), "bounds": _bounds([coverage, detections]),
        "quicklook": {"uri": look.uri, "bounds": look.bounds} if look else None,
    }
    if risk is not None:
        part.update(risk=layers.risk_layer(risk), riskName="Risk cells")
    if files.sectors.is_file():
        part["sectors"] = layers.sector_rows(read_layer(files.sectors, ()))
    return part


def _shared(
    run_dir: Path, detections: gpd.GeoDataFrame, coverage: gpd.GeoDataFrame, statuses: dict[str, str]
) -> dict[str, Any]:
    shared_path = RunFiles(run_dir).risk_shared
    if shared_path.is_file():
        cells = read_layer(shared_path, RISK_COLUMNS)
        return {"risk": layers.risk_layer(cells), "riskName": "Risk cells (shared)", "bounds": None,
                "extent": _bounds([cells]) if not cells.empty else None}
    log.info("no %s; the shared map shows lead counts per cell instead", shared_path.name)
    rejected = detections["site_id"].astype(str).map(lambda s: statuses.get(s) == "rejected").astype(bool)
    cells = aggregate_cells(detections[~rejected])
    return {
        "risk": layers.count_layer(cells), "riskCounts": True, "minCount": DEFAULT_MIN_COUNT,
        "riskName": f"Leads per ~{DEFAULT_CELL_M / 1000:g} km cell (rejected not counted)",
        "coverage": layers.coverage_layer(coverage), "bounds": _bounds([coverage]),
    }


def _bounds(frames: list[gpd.GeoDataFrame]) -> list[list[float]]:
    boxes = [f.total_bounds for f in frames if not f.empty]
    if not boxes:
        return [[-60.0, -180.0], [75.0, 180.0]]
    return [[min(b[1] for b in boxes), min(b[0] for b in boxes)],
            [max(b[3] for b in boxes), max(b[2] for b in boxes)]]

