"""``fieldtruth forget``: erase one site from a whole run folder, tile results included.

The review room erases the site from every file that names it by ``site_id`` and from the ledger
(:func:`fieldtruth.review.erasure.forget_site`). The per-tile results under ``tiles/`` hold raw detections
in the grid CRS without site ids (a resumed scan re-merges them), so this module first removes from them
every detection that merges into the site, or lies within the duplicate-suppression distance of it.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from pyproj import Transformer

from fieldtruth.atomicfile import json_text
from fieldtruth.pipelines.merge import site_id as make_site_id
from fieldtruth.pipelines.tileresult import TileDetection, read_tile_result
from fieldtruth.review.erasure import ErasureReport, check_erasure_args, forget_site, shred_replace
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.sitedata import site_facts
from fieldtruth.runfiles import RunFiles

log = logging.getLogger(__name__)


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _matches(det: TileDetection, site: str, crs: str, centre: tuple[float, float], radius: float) -> bool:
    if make_site_id(det.label, crs, det.x, det.y) == site:
        return True
    return math.hypot(det.x - centre[0], det.y - centre[1]) <= radius


def scrub_tile_results(run_dir: Path, site: str, lon: float, lat: float) -> list[str]:
    """Remove the site's raw detections from ``tiles/*.json``; return the files rewritten (relative).

    Raises:
        fieldtruth.pipelines.errors.RunFolderError: a tile result cannot be read (nothing is erased from it).
    """
    files = RunFiles(run_dir)
    run_json, card = _json(files.run_json), _json(files.model_card)
    grid = run_json.get("grid") or {}
    tiles = sorted(files.tiles.glob("*.json")) if files.tiles.is_dir() else []
    if not tiles or "crs" not in grid:
        return []
    crs, resolution = str(grid["crs"]), float(grid.get("resolution", 10.0))
    centre = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    radius = max(float(card.get("min_distance_px", 1)) * resolution, resolution)
    rewritten = []
    for path in tiles:
        result = read_tile_result(path)  # an unreadable one may hold the site: stop, naming it
        kept = tuple(d for d in result.detections if not _matches(d, site, crs, centre, radius))
        if len(kept) != len(result.detections):
            text = json_text(replace(result, detections=kept).to_json())
            shred_replace(path, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
            rewritten.append(str(path.relative_to(run_dir)))
    return rewritten


def forget_everywhere(run_dir: Path, site: str, reason: str, by: str = "erasure") -> ErasureReport:
    """Erase a site from the run folder: tile results, every file naming it, chips, maps, the ledger.

    Raises:
        fieldtruth.review.errors.UnknownSiteError: If the site is unknown or already erased.
        fieldtruth.review.errors.LedgerTamperedError: If the chain does not verify (nothing touched).
        fieldtruth.pipelines.errors.RunFolderError: If a tile result cannot be read (the ledger untouched).
    """
    check_erasure_args(reason, by)
    facts = site_facts(run_dir).get(site) if RunFiles(run_dir).detections.exists() else None
    with Ledger.of_run(run_dir, register=facts is not None) as ledger:
        ledger.verify().raise_for_error()
        known = site in ledger.sites()
    located = known and facts is not None and facts.lon is not None and facts.lat is not None
    tiles = scrub_tile_results(run_dir, site, facts.lon, facts.lat) if located else []
    report = forget_site(run_dir, site, reason, by)
    return replace(report, rewritten=(*tiles, *report.rewritten))
