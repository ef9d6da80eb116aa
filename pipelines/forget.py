"""``fieldtruth forget``: erase one site from a whole run folder, tile results, heatmap and derived counts
included.

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
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from pyproj import Transformer

from fieldtruth.atomicfile import json_text
from fieldtruth.maps.risk import prepare_recount
from fieldtruth.pipelines.errors import RunFolderError
from fieldtruth.pipelines.heatmap import plan_heatmap_erasure
from fieldtruth.pipelines.stacitem import refresh_run_items
from fieldtruth.pipelines.tileresult import TileDetection, read_tile_result
from fieldtruth.review.erasure import ErasureReport, carry_out, plan_erasure
from fieldtruth.review.erasure_files import FileAction
from fieldtruth.review.errors import ErasureError
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.lineage import linked_runs
from fieldtruth.runfiles import RunFiles

log = logging.getLogger(__name__)

#: The map tier that is drawn again after an erasure (the restricted one needs its passphrase).
SHARED_TIER = "shared"


def _json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _writer(text: str) -> Callable[[Path], None]:
    """Write ``text`` (UTF-8) to the temporary file an erasure action is given."""

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    return write


def _matches(det: TileDetection, site: str, centre: tuple[float, float] | None, radius: float) -> bool:
    if det.site_id == site:
        return True
    if centre is None:
        return False
    return math.hypot(det.x - centre[0], det.y - centre[1]) <= radius


def plan_tile_results(run_dir: Path, site: str, lonlat: tuple[float, float] | None) -> list[FileAction]:
    """Plan the removal of the site's raw detections from ``tiles/*.json`` (touching nothing).

    Raises:
        ErasureError: If a tile result cannot be read (it may hold the site); nothing was changed.
    """
    files = RunFiles(run_dir)
    run_json, card = _json(files.run_json), _json(files.model_card)
    grid = run_json.get("grid") or {}
    tiles = sorted(files.tiles.glob("*.json")) if files.tiles.is_dir() else []
    centre, radius = None, 0.0
    if lonlat is not None and "crs" in grid:
        resolution = float(grid.get("resolution", 10.0))
        centre = Transformer.from_crs("EPSG:4326", str(grid["crs"]), always_xy=True).transform(*lonlat)
        radius = max(float(card.get("min_distance_px", 1)) * resolution, resolution)
    actions = []
    for path in tiles:
        try:
            result = read_tile_result(path)
        except RunFolderError as exc:
            raise ErasureError(
                f"expected every tile result to be readable, since one may hold site {site!r}: {exc}. "
                "Nothing was changed."
            ) from exc
        kept = tuple(d for d in result.detections if not _matches(d, site, centre, radius))
        if len(kept) != len(result.detections):
            text = json_text(replace(result, detections=kept).to_json())
            actions.append(FileAction(path, path.relative_to(run_dir), _writer(text)))
    return actions


#: Pixels around an erased site blanked in the heatmap (at least; twice the detector's minimum distance
#: when larger): the site's whole footprint, and the blur of the detector's scores around it.
HEATMAP_BLANK_PX = 16


def plan_heatmap(run_dir: Path, lonlat: tuple[float, float] | None) -> list[FileAction]:
    """Plan blanking the run's heatmap around the site (see
    :func:`fieldtruth.pipelines.heatmap.plan_heatmap_erasure`); nothing when it has none."""
    files = RunFiles(run_dir)
    grid, card = _json(files.run_json).get("grid") or {}, _json(files.model_card)
    if lonlat is None or "crs" not in grid or not files.heatmap.is_file():
        return []
    resolution = float(grid.get("resolution", 10.0))
    centre = Transformer.from_crs("EPSG:4326", str(grid["crs"]), always_xy=True).transform(*lonlat)
    radius = max(HEATMAP_BLANK_PX, 2 * int(card.get("min_distance_px", 1))) * resolution
    return plan_heatmap_erasure(files, centre, radius, tile_size=int(grid["tile_size"]),
                                resolution=resolution)


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
    plan.actions = (plan_tile_results(run_dir, site, plan.lonlat) + plan_heatmap(run_dir, plan.lonlat)
                    + plan.actions)
    recount = prepare_recount(run_dir)
    shared_map = RunFiles(run_dir).leads_map(SHARED_TIER)
    shared_rel = str(shared_map.relative_to(run_dir))
    had_shared_map = shared_map.is_file()

    def derived() -> list[str]:
        rewritten = recount() if recount is not None else []
        if had_shared_map:
            from fieldtruth.maps.leads import build_leads_map

            build_leads_map(run_dir, shared_map, tier=SHARED_TIER)
            rewritten.append(shared_rel)
        return rewritten

    report = carry_out(plan, before_ledger=derived)
    refresh_run_items(run_dir)  # the label counts of the run's Item
    if had_shared_map:
        report = replace(report, maps_deleted=tuple(m for m in report.maps_deleted if m != shared_rel))
    log.info(
        "erased site %s: rewrote %s, deleted %s", site, report.rewritten, report.deleted + report.maps_deleted
    )
    return report


def forget_in_region(run_dir: Path, site: str, reason: str, by: str = "erasure") -> dict[Path, ErasureReport]:
    """Erase a site from a run and from every run of its region linked to it (``scan --previous``
    carries a site's id forward, so the site has the same id in each run that found it).

    Every linked run folder must be there, and every file of the runs holding the site searchable
    (:func:`fieldtruth.review.erasure.plan_erasure` is run on each first): otherwise it refuses before
    anything is touched. Runs that never held the site are left as they are.

    Returns:
        Run folder -> what was erased there (the given run first).

    Raises:
        ErasureError: If a linked run folder is missing or a file cannot be searched (nothing touched);
            otherwise as :func:`forget_everywhere` (a failure while writing a later run leaves the earlier
            ones erased: run it again to finish).
        fieldtruth.review.errors.UnknownSiteError: If no run of the region ever held the site.
    """
    run_dir = Path(run_dir)
    linked = linked_runs(run_dir)
    missing = [str(p) for p in linked if not p.is_dir()]
    if missing:
        raise ErasureError(
            f"expected every run linked to {str(run_dir)!r} to be there, since each may hold site {site!r}; "
            f"missing: {missing!r}. Put them back (or remove them from lineage.json if they were deleted), "
            "then run it again. Nothing was changed."
        )
    holders = [d for d in linked if _holds(d, site)]
    runs = ([run_dir] if _holds(run_dir, site) or not holders else []) + holders
    for folder in runs[1:]:  # every run searchable before the first is touched
        plan_erasure(folder, site, reason, by)
    return {d: forget_everywhere(d, site, reason, by) for d in runs}


def _holds(run_dir: Path, site: str) -> bool:
    """Whether the run's detections or ledger (erased sites included) hold the site id."""
    files = RunFiles(run_dir)
    if files.detections.is_file():
        ids = pq.read_table(files.detections, columns=["site_id"]).column("site_id").to_pylist()
        if site in ids:
            return True
    if not files.ledger.is_file():
        return False
    with Ledger.open(files.ledger) as ledger:
        return site in ledger.sites() or site in ledger.erased_sites()
