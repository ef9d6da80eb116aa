"""``fieldtruth forget``: erase one site from a whole run folder, tile results and derived counts included.

Everything is checked before anything is changed: the review room plans the site's removal from every
file that names it (:func:`fieldtruth.review.erasure.plan_erasure`, which refuses up front a file it
cannot search), this module plans its removal from the per-tile results under ``tiles/`` (raw detections
in the grid CRS, found by the site id stamped on them, or within the duplicate-suppression distance of
the site, so a suppressed twin cannot bring it back), and the maps room prepares the recount of the risk
cells whose counts included the site. Then the tiles and files are rewritten, the risk cells and their
shared view are recomputed, the shared map is drawn again where there was one (a restricted map needs
its passphrase: it is deleted and must be drawn again), and the ledger is erased last. Running it again
after an interruption finishes the job.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyproj import Transformer

from fieldtruth.maps.risk import prepare_recount
from fieldtruth.review.erasure import ErasureReport, carry_out, plan_erasure
from fieldtruth.review.erasure_files import FileAction
from fieldtruth.review.errors import ErasureError

log = logging.getLogger(__name__)

SHARED_MAP = Path("maps") / "leads_shared.html"


def _json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _matches(det: dict[str, Any], site: str, centre: tuple[float, float] | None, radius: float) -> bool:
    if det.get("site_id") == site:
        return True
    if centre is None:
        return False
    x, y = float(det.get("x", math.nan)), float(det.get("y", math.nan))
    return math.hypot(x - centre[0], y - centre[1]) <= radius


def plan_tile_results(run_dir: Path, site: str, lonlat: tuple[float, float] | None) -> list[FileAction]:
    """Plan the removal of the site's raw detections from ``tiles/*.json`` (touching nothing).

    Raises:
        ErasureError: If a tile result that names the site cannot be read as JSON.
    """
    run_json, card = _json(run_dir / "run.json"), _json(run_dir / "model_card.json")
    grid = run_json.get("grid") or {}
    tiles = sorted((run_dir / "tiles").glob("*.json")) if (run_dir / "tiles").is_dir() else []
    centre, radius = None, 0.0
    if lonlat is not None and "crs" in grid:
        resolution = float(grid.get("resolution", 10.0))
        centre = Transformer.from_crs("EPSG:4326", str(grid["crs"]), always_xy=True).transform(*lonlat)
        radius = max(float(card.get("min_distance_px", 1)) * resolution, resolution)
    actions = []
    for path in tiles:
        result = _json(path)
        if not result and site.encode() in path.read_bytes():
            raise ErasureError(
                f"expected tile result {str(path)!r} to be JSON; it names site {site!r} but cannot "
                "be read. Nothing was changed: remove that file (the tile is redone on --resume)."
            )
        dets = result.get("detections") or []
        kept = [d for d in dets if not _matches(d, site, centre, radius)]
        if len(kept) != len(dets):
            text = json.dumps({**result, "detections": kept}, indent=2, sort_keys=True, default=str) + "\n"
            write: Callable[[Path], Any] = lambda tmp, text=text: tmp.write_text(text, encoding="utf-8")  # noqa: E731
            actions.append(FileAction(path, path.relative_to(run_dir), write))
    return actions


def forget_everywhere(run_dir: Path, site: str, reason: str, by: str = "erasure") -> ErasureReport:
    """Erase a site from the run folder: tile results, every file naming it, chips, maps, derived risk
    counts, the ledger.

    Raises:
        fieldtruth.review.errors.UnknownSiteError: If the site was never part of the run.
        fieldtruth.review.errors.LedgerTamperedError: If the chain does not verify (nothing touched).
        fieldtruth.review.errors.ErasureError: If a file cannot be searched (nothing touched) or written
            (run it again to finish).
    """
    run_dir = Path(run_dir)
    plan = plan_erasure(run_dir, site, reason, by)
    plan.actions = plan_tile_results(run_dir, site, plan.lonlat) + plan.actions
    recount = prepare_recount(run_dir)
    had_shared_map = (run_dir / SHARED_MAP).is_file()
    report = ErasureReport()

    def derived() -> None:
        if recount is not None:
            report.rewritten += recount()
        if had_shared_map:
            from fieldtruth.maps.leads import build_leads_map

            build_leads_map(run_dir, run_dir / SHARED_MAP, tier="shared")
            report.rewritten.append(str(SHARED_MAP))

    carry_out(plan, report, before_ledger=derived)
    if had_shared_map and str(SHARED_MAP) in report.maps_deleted:
        report.maps_deleted.remove(str(SHARED_MAP))
    log.info(
        "erased site %s: rewrote %s, deleted %s", site, report.rewritten, report.deleted + report.maps_deleted
    )
    return report
