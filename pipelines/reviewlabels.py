"""A reviewed run's decisions as training labels (``fieldtruth train --from-review RUN``).

The run folder says what the scan read: ``run.json`` names the imagery as it was given (a folder, a
file, a STAC document or search) and ``scan-plan.json`` the tile grid and each scene's file checksums.
:func:`reviewed_run` checks the ledger (a ledger that does not verify is refused, naming the first bad
entry), takes each site's latest decision (``confirmed`` and ``rejected`` only: ``uncertain``,
``field_visit``, unverified and erased sites are left out, and earlier decisions a later one superseded
never count), opens the imagery again, checks it is the imagery the scan read (same scenes, same files),
and reads the windows around the decided leads back onto the scan's grid
(:mod:`fieldtruth.detectors.decisions`).

:func:`record_learning` writes into the run folder which bundles learned from its decisions, so that
``fieldtruth forget`` can say so.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

from pyproj import Transformer
from rasterio.coords import BoundingBox
from rasterio.crs import CRS

from fieldtruth.atomicfile import write_json
from fieldtruth.detectors.decisions import CONFIRMED, REJECTED, DecidedLead, ReviewedRun, decision_windows
from fieldtruth.detectors.labels import POINT_SIZE_PX
from fieldtruth.detectors.sceneoffset import prepare_scenes
from fieldtruth.errors import FieldtruthError
from fieldtruth.imagery.grid import TileGrid
from fieldtruth.ingest.scene import Scene
from fieldtruth.ingest.sources import open_imagery
from fieldtruth.pipelines.errors import RunFolderError
from fieldtruth.pipelines.preflight import cloud_order
from fieldtruth.pipelines.scan import scene_fingerprint
from fieldtruth.review.ledger import Ledger
from fieldtruth.runfiles import RunFiles

log = logging.getLogger(__name__)

class ImageryGoneError(RunFolderError, FileNotFoundError):
    """The imagery a reviewed scan read can no longer be read, or is not the same imagery."""


def reviewed_run(
    run_dir: Path, bands: tuple[str, ...], scene_offset: dict[str, Any], *, chip_size: int,
    point_size_m: float | None = None, allow_hosts: tuple[str, ...] = (),
) -> ReviewedRun:
    """Read a reviewed run's decisions as training windows.

    Args:
        run_dir: the run folder of a scan whose leads were reviewed.
        bands: the bands the detector to train reads. scene_offset: its scene offsets (see the card).
        chip_size: training chip side (pixels).
        point_size_m: ground side of the square a confirmed lead becomes (the scan's detections carry no
            size); :data:`~fieldtruth.detectors.labels.POINT_SIZE_PX` pixels when None.
        allow_hosts: hosts the imagery may be read from although loopback/private or plain http.

    Raises:
        RunFolderError: the folder is not a finished scan (no ``run.json`` or ``scan-plan.json``).
        LedgerTamperedError: the ledger does not verify (the first bad entry named).
        ImageryGoneError: the imagery cannot be opened again, or is not what the scan read.
        TrainingError: no decision to learn from.
    """
    files = RunFiles(Path(run_dir))
    run_json, plan = _json(files.run_json), _json(files.plan)
    leads, provenance = _decided_leads(files, plan)
    scenes = prepare_scenes(_scenes_again(files, run_json, plan, allow_hosts), bands, scene_offset)
    grid = TileGrid(BoundingBox(*plan["bounds"]), CRS.from_user_input(plan["crs"]), float(plan["resolution"]),
                    int(plan["tile_size"]), int(plan["halo"]))
    size_px = POINT_SIZE_PX if point_size_m is None else point_size_m / grid.resolution
    windows = decision_windows(scenes, grid, leads, bands, chip_size=chip_size, point_size_px=size_px,
                               name=files.root.name)
    return ReviewedRun(files.root.name, tuple(windows), provenance)


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"expected a finished scan's {path.name} in {str(path.parent)!r} ({exc}); "
                             "give the run folder that `fieldtruth scan --out` wrote") from exc
    if not isinstance(data, dict):
        raise RunFolderError(f"{str(path)!r} is not a JSON object; the run folder is damaged")
    return data


def _decided_leads(files: RunFiles, plan: dict[str, Any]) -> tuple[list[DecidedLead], dict[str, Any]]:
    """Each live site's latest decision, when it is a label, in the grid's CRS; and the counts."""
    from fieldtruth.detectors.errors import TrainingError

    with Ledger.of_run(files.root, register=False) as ledger:
        ledger.verify().raise_for_error()
        statuses, sites, head = ledger.statuses(), ledger.sites(), ledger.head()
    to_grid = Transformer.from_crs("EPSG:4326", CRS.from_user_input(plan["crs"]), always_xy=True)
    leads, counts = [], {"positives": 0, "negatives": 0, "left_out": {}, "without_position": 0}
    for site_id, status in sorted(statuses.items()):
        site = sites.get(site_id)
        if status not in (CONFIRMED, REJECTED) or site is None:
            counts["left_out"][status] = counts["left_out"].get(status, 0) + 1
            continue
        if site.lon is None or site.lat is None:
            counts["without_position"] += 1
            continue
        x, y = to_grid.transform(site.lon, site.lat)
        leads.append(DecidedLead(float(x), float(y), str(site.label), status))
        counts["positives" if status == CONFIRMED else "negatives"] += 1
    if not leads:
        raise TrainingError(f"run {str(files.root)!r} holds no confirmed or rejected lead to learn from (its "
                            f"statuses: {counts['left_out']!r}); review some leads first")
    provenance = {"kind": "review decisions", "run": files.root.name,
                  "ledger_head": {"seq": head[0], "sha256": head[1]},
                  "scan_bundle_sha256": plan.get("bundle_sha256"), **counts}
    return leads, provenance


def _scenes_again(
    files: RunFiles, run_json: dict[str, Any], plan: dict[str, Any], allow_hosts: tuple[str, ...]
) -> list[Scene]:
    """The scenes the scan read, opened again and checked against the plan's fingerprints."""
    config = run_json.get("config") or {}
    source = config.get("imagery")
    try:
        scenes = open_imagery(source, collection=config.get("collection"), datetime=config.get("datetime"),
                              max_cloud=config.get("max_cloud"), bbox=_search_bbox(run_json),
                              allow_hosts=tuple(config.get("allow_hosts") or ()) + allow_hosts)
    except (FieldtruthError, OSError, TypeError) as exc:
        raise ImageryGoneError(
            f"run {str(files.root)!r}: the imagery the scan read ({source!r}) cannot be opened again "
            f"({exc}); put it back where run.json says, or train on labelled scene folders instead") from exc
    wanted = {s["id"]: s for s in plan.get("scenes") or []}
    found = {s.id: s for s in scenes if s.id in wanted}
    for scene_id, fingerprint in sorted(wanted.items()):
        if scene_id not in found:
            raise ImageryGoneError(f"run {str(files.root)!r}: scene {scene_id!r} the scan read is no longer "
                                   f"in {source!r}; put it back, or train on labelled scene folders instead")
        if scene_fingerprint(found[scene_id]) != fingerprint:
            raise ImageryGoneError(f"run {str(files.root)!r}: the files of scene {scene_id!r} in {source!r} "
                                   "are not those the scan read (checksum, size or date differ); the "
                                   "decisions belong to the imagery scanned: restore it")
    return sorted(found.values(), key=cloud_order)


def _search_bbox(run_json: dict[str, Any]) -> tuple[float, ...] | None:
    """The AOI bounds a STAC API search used (None for other imagery)."""
    aoi = (run_json.get("config") or {}).get("aoi")
    if not aoi or not (run_json.get("config") or {}).get("collection"):
        return None
    from fieldtruth.ingest.aoi import read_aoi

    return tuple(read_aoi(aoi).bounds)


def record_learning(run_dir: Path, bundle_sha256: str, bundle_path: Path) -> None:
    """Add a bundle that learned from this run's decisions to the run folder's ``learned-by.json``."""
    path = RunFiles(Path(run_dir)).learned_by
    entries = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    entries.append({"bundle_sha256": bundle_sha256, "bundle": str(Path(bundle_path).resolve()),
                    "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
    write_json(path, entries)


def learned_by(run_dir: Path) -> list[dict[str, Any]]:
    """The bundles that learned from this run's decisions (see :func:`record_learning`)."""
    path = RunFiles(Path(run_dir)).learned_by
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []
