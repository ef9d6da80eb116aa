"""The scan: imagery + detector bundle -> run folder, on a local Dask cluster or a remote scheduler.

Tiles are grouped into blocks of neighbours, each read in one window by one task, and submitted in
bounded batches (a sliding window of futures), so the scheduler's graph stays small whatever the
region's size. Each finished tile is written to ``tiles/<id>.json`` atomically by
the client as it arrives, so a killed scan loses only the tiles in flight; ``resume`` skips tiles with
a result and retries failed ones. When all tiles are done, results are merged into GeoParquet.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from distributed import performance_report

from fieldtruth.atomicfile import atomic_path, write_json
from fieldtruth.detectors.bundle import LoadedBundle
from fieldtruth.detectors.device import device_memory
from fieldtruth.detectors.sceneoffset import looks_like_water, prepare_scenes
from fieldtruth.imagery.errors import ImageryReadError
from fieldtruth.imagery.grid import TileGrid
from fieldtruth.ingest.remote import is_remote
from fieldtruth.ingest.scene import Scene
from fieldtruth.pipelines.errors import RunFolderError
from fieldtruth.pipelines.heatmap import heatmap_factor, save_tile_scores, write_heatmap
from fieldtruth.pipelines.merge import DetectionContext, merge_coverage, merge_detections, with_site_ids
from fieldtruth.pipelines.preflight import preflight
from fieldtruth.pipelines.progress import TileProgress
from fieldtruth.pipelines.runfolder import RunFolder, software_versions
from fieldtruth.pipelines.scancluster import cluster_client, run_blocks, worker_threads
from fieldtruth.pipelines.scansummary import FailedTile, ScanSummary, SceneLeftOut
from fieldtruth.pipelines.sitelinks import carry_forward, link_tolerance_m, load_run, run_date
from fieldtruth.pipelines.stacitem import write_run_items
from fieldtruth.pipelines.stacmodel import write_model_item
from fieldtruth.pipelines.tileresult import load_tile_results, read_tile_result
from fieldtruth.pipelines.tilework import (
    READ_ERRORS,
    DetectorPlugin,
    local_workers,
)
from fieldtruth.review.ledger import Ledger

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanConfig:
    """What a scan needs.

    Attributes:
        imagery: scene folder, raster file, STAC Item/catalogue JSON, or STAC API URL.
        detector: model bundle file.
        out: run folder to write.
        tile_size: tile core side in pixels; from the detector's receptive field when None
            (:func:`~fieldtruth.detectors.scangrid.default_tile_size`).
        block: tiles per side of the block one task reads in one window (neighbouring tiles share the file
            blocks under their halos, which are then decoded once); 1 reads every tile alone; the grid's
            default (2, or 1 for a region of fewer than 16 blocks) when None.
        halo: halo in pixels; at least the detector's receptive field when None.
        workers: local Dask worker processes (ignored with ``scheduler``); when None, 2 on the CPU, and on
            a GPU one per 4 cores (as many as its memory holds), all sharing it
            (:func:`~fieldtruth.pipelines.tilework.local_workers`).
        threads_per_worker: torch threads per local worker; each also gets one more task thread, which reads
            the next block while the model runs, when the workers' model threads leave a core free.
        scheduler: address of a running Dask scheduler (``tcp://host:port``); local cluster when None.
        resume: skip tiles that already have a result, retry failed ones.
        max_in_flight: most tasks (blocks) submitted and unfinished at once; when None, 2 per worker
            thread with ``worker_bands`` (a block sent to a worker waits there, so a short queue keeps the
            end of the scan balanced), else 4 (the scheduler holds the queue and hands blocks to whichever
            worker is free).
        performance_report: save Dask's performance report of the tile phase in the run folder.
        worker_bands: each worker reads one band of neighbouring blocks, so the halos they share are decoded
            once (see :mod:`fieldtruth.pipelines.placement`); False lets the scheduler hand blocks out in
            turn.
        aoi: AOI file or bbox ``west,south,east,north``; the imagery footprint when None.
        collection: STAC API collection (with a STAC API URL as imagery).
        datetime: STAC API date or range.
        max_cloud: STAC API largest cloud cover in percent.
        allow_hosts: hosts that may be read although loopback/private or plain http.
        heatmap: also write the detector's scores as ``heatmap.tif`` (:mod:`fieldtruth.pipelines.heatmap`).
        previous: earlier run folders of the same region: leads found again keep their site ids
            (:mod:`fieldtruth.pipelines.sitelinks`).
        date: scan only the scenes acquired on this date (``YYYY-MM-DD``); all when None
            (:mod:`fieldtruth.pipelines.bydate` scans each date of the imagery this way).
        device: ``auto``, ``cpu`` or ``cuda`` (:func:`~fieldtruth.detectors.device.resolve_device`); on a
            GPU each block's tiles pass through the model in one batch.
        precision: ``auto``, ``float32`` or ``bfloat16``
            (:func:`~fieldtruth.detectors.device.resolve_precision`).
    """

    imagery: str | Path
    detector: Path
    out: Path
    aoi: str | None = None
    collection: str | None = None
    datetime: str | None = None
    max_cloud: float | None = None
    allow_hosts: tuple[str, ...] = ()
    tile_size: int | None = None
    block: int | None = None
    halo: int | None = None
    workers: int | None = None
    threads_per_worker: int = 1
    scheduler: str | None = None
    resume: bool = False
    max_in_flight: int | None = None
    performance_report: bool = False
    worker_bands: bool = True
    heatmap: bool = False
    previous: tuple[Path, ...] = ()
    date: str | None = None
    device: str = "auto"
    precision: str = "auto"


def scan(config: ScanConfig, *, progress: Callable[[str], None] | None = None) -> ScanSummary:
    """Run a scan and write its run folder.

    Args:
        config: the scan's inputs and settings.
        progress: called with one-line messages for the user (the CLI passes ``click.echo``).

    Raises:
        PreflightError: the detector, AOI or scenes cannot be read or do not go together (see
            :mod:`fieldtruth.pipelines.preflight`); nothing was written and no cluster started.
        RunFolderError: the output folder holds a different run and ``resume`` was not asked for.
        ClusterError: the scheduler could not be reached.
    """
    started = time.perf_counter()
    say = progress or (lambda message: log.info("%s", message))
    plan = preflight(config)  # every check before anything is written or started
    for earlier in config.previous:  # readable, with a date, before anything is written
        load_run(earlier)
    bundle, grid, block, halo = plan.bundle, plan.grid, plan.block, plan.grid.halo
    if plan.device.note:
        say(f"scan: {plan.device.note}")
    gpu = plan.device.device.type == "cuda"
    workers = local_workers(config.workers, gpu, gpu_memory=device_memory(plan.device.device))
    config = replace(config, workers=workers)
    scenes, left_out = _with_scene_offsets(bundle, plan.scenes, say)
    factor = heatmap_factor(bundle, grid.tile_size) if config.heatmap else None
    run = _prepare_run_folder(config)
    run.keep_plan(_plan(grid, block, bundle, scenes, left_out) | ({"heatmap": factor} if factor else {}),
                  resume=config.resume)
    todo = [t for t in grid if not _finished(run, t.id)] if config.resume else list(grid)
    skipped = len(grid) - len(todo)
    say(f"scan: {len(grid)} tiles of {grid.tile_size} px (+{halo} px halo, "
        f"read {block} x {block} per task) "
        f"on {grid.crs} at {grid.resolution:g} m; "
        f"{len(todo)} to do, {skipped} already done")
    timings: dict[str, float] = {}
    with cluster_client(config, say, gpu=gpu) as client:
        client.register_plugin(DetectorPlugin(
            config.detector.read_bytes(), bundle.sha256, config.threads_per_worker, heatmap_factor=factor,
            device=plan.device.device.type, batch=block * block if gpu else 1, precision=plan.precision))
        limit = config.max_in_flight or (2 if config.worker_bands else 4) * worker_threads(client)
        timings["startup"] = time.perf_counter() - started
        tiles_started = time.perf_counter()
        with _maybe_performance_report(config, run), TileProgress(todo, say) as bar:
            for result in run_blocks(client, scenes, grid.blocks(block, todo), limit, config.worker_bands):
                if result.heatmap is not None:  # before the result: a finished tile has its scores
                    save_tile_scores(run, result.tile_id, result.heatmap)
                run.write_tile_result(with_site_ids(result))
                bar.tile_done(result)
        timings["tiles"] = time.perf_counter() - tiles_started
    partial = ScanSummary(run.root, len(grid), skipped=skipped, scenes_left_out=left_out, timings=timings,
                          device=plan.device.device.type, precision=plan.precision)
    return _finish(run, grid, scenes, bundle, config, partial, started)


def _maybe_performance_report(config: ScanConfig, run: RunFolder) -> AbstractContextManager[object]:
    """Dask's performance report of the tile phase, saved in the run folder when asked for."""
    if not config.performance_report:
        return nullcontext()
    return performance_report(filename=str(run.performance_report))


def _prepare_run_folder(config: ScanConfig) -> RunFolder:
    run = RunFolder(config.out)
    if run.root.exists() and any(run.tiles.glob("*.json")) and not config.resume:
        raise RunFolderError(
            f"run folder {str(run.root)!r} already holds tile results; pass --resume to continue it, "
            "or choose a new --out"
        )
    return run.create()


def _with_scene_offsets(
    bundle: LoadedBundle, scenes: list[Scene], say: Callable[[str], None],
) -> tuple[list[Scene], tuple[SceneLeftOut, ...]]:
    """The scenes with the offsets the detector's card asks for (see :mod:`fieldtruth.detectors.sceneoffset`).

    A scene whose offsets cannot be computed (an unreadable file) is left out of the scan and reported,
    so its tiles show no coverage instead of uncorrected pixels, and the rest of the scan goes on.

    Raises:
        ImageryReadError: no scene could be prepared.
    """
    card = bundle.card
    if not card.scene_offset:
        return scenes, ()
    prepared: list[Scene] = []
    left_out: list[SceneLeftOut] = []
    for scene in scenes:
        try:
            # dry scenes are reported once below, in one line, not once per scene by the log as well
            prepared.extend(prepare_scenes([scene], card.bands, card.scene_offset, warn_dry=False))
        except READ_ERRORS as exc:
            left_out.append(SceneLeftOut(scene.id, f"{type(exc).__name__}: {exc}"))
            say(f"scan: scene {scene.id} left out: its water-level offsets could not be computed ({exc})")
    if not prepared:
        reasons = "; ".join(f"{e.scene_id}: {e.error}" for e in left_out)
        raise ImageryReadError(
            f"no scene could be read to compute the detector's water-level offsets: {reasons}")
    say(f"scan: open water of {len(prepared)} scene(s) brought to level {card.scene_offset['level']:g} "
        "as the detector asks (offsets per scene in run.json)")
    dry = [s.id for s in prepared if looks_like_water(s.band_offsets, card.scene_offset) is False]
    if dry:
        say(f"scan: WARNING: the darkest pixels of {len(dry)} scene(s) are not water ({', '.join(dry[:5])}"
            f"{', ...' if len(dry) > 5 else ''}); this detector assumes open water in every scene, so its "
            "leads there are not to be trusted")
    return prepared, tuple(left_out)


def _plan(
    grid: TileGrid, block: int, bundle: LoadedBundle, scenes: list[Scene], left_out: tuple[SceneLeftOut, ...],
) -> dict[str, Any]:
    """What fixes a scan's tiles and their pixels: a resume with anything else would mix two scans."""
    plan = {"crs": grid.crs.to_string(), "bounds": [round(v, 6) for v in grid.bounds],
            "resolution": grid.resolution,
            "tile_size": grid.tile_size, "halo": grid.halo, "block": block, "bundle_sha256": bundle.sha256,
            "scenes": sorted((scene_fingerprint(s) for s in scenes), key=lambda f: f["id"])}
    if bundle.card.scene_offset:
        plan["band_offsets"] = {s.id: s.band_offsets for s in scenes}
        plan["scenes_left_out"] = sorted(e.scene_id for e in left_out)
    return plan


def scene_fingerprint(scene: Scene) -> dict[str, Any]:
    """What identifies a scene's pixels for a resume: its id and, per file, the sha256 where known, else
    the size and modification time of a local file, else the URL and the size the catalogue gives."""
    files = []
    for source in scene.provenance:
        if source.sha256:
            files.append({"sha256": source.sha256})
        elif not is_remote(source.href) and Path(source.href).is_file():
            stat = Path(source.href).stat()
            files.append({"name": Path(source.href).name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
        else:
            files.append({"href": source.href, "size": source.size})
    return {"id": scene.id, "files": sorted(files, key=lambda f: json.dumps(f, sort_keys=True))}


def _finished(run: RunFolder, tile_id: str) -> bool:
    path = run.tile_result(tile_id)
    if not path.exists():
        return False
    try:
        return read_tile_result(path).ok
    except RunFolderError:
        return False


def _finish(
    run: RunFolder, grid: TileGrid, scenes: list[Scene], bundle: LoadedBundle, config: ScanConfig,
    partial: ScanSummary, started: float,
) -> ScanSummary:
    """Merge tile results into the run's files, register sites in the ledger, and write run.json.

    ``partial`` is the summary of the tile phase (tiles, skipped, scenes left out, timings); the summary
    returned adds what the merge finds."""
    merge_started = time.perf_counter()
    results = load_tile_results(run.tiles)
    card = bundle.card
    context = DetectionContext(
        scene_id=",".join(s.id for s in scenes), acquired=_date_range(scenes),
        detector=card.name or card.architecture, bundle_sha256=bundle.sha256,
        min_distance_m=float(card.min_distance_px) * grid.resolution,
    )
    detections = merge_detections(results.values(), grid, context)
    with atomic_path(run.detections) as tmp:
        detections.to_parquet(tmp, index=False)
    with atomic_path(run.coverage) as tmp:
        merge_coverage(results, grid).to_parquet(tmp, index=False)
    write_json(run.model_card, card.to_dict())
    if config.previous:
        carry_forward(run.root, list(config.previous), run_date(context.acquired, repr(str(config.imagery))),
                      link_tolerance_m(grid.resolution, context.min_distance_m))
    Ledger.of_run(run.root).close()  # registers the detections as the ledger's sites
    summary = replace(
        partial,
        failed=tuple(FailedTile(r.tile_id, str(r.error)) for r in results.values() if not r.ok),
        done=sum(1 for r in results.values() if r.ok),
        # summed over tiles (worker time, not wall time): reads longer than the model mean a read-bound scan
        tile_work={k: round(sum(getattr(r, f"{k}_seconds") or 0.0 for r in results.values()), 3)
                   for k in ("read", "wait", "model")},
        detections=len(detections),
        seconds=round(time.perf_counter() - started, 2),
        timings={**partial.timings, "merge": time.perf_counter() - merge_started},
    )
    _write_run_json(run, grid, scenes, bundle, config, summary)
    if config.heatmap:
        write_heatmap(run, grid, heatmap_factor(bundle, grid.tile_size))
    write_model_item(run.model_stac, bundle, str(config.detector.resolve()))
    write_run_items(run.root)
    return summary


def _describe_input(scene: Scene, grid: TileGrid) -> dict[str, Any]:
    """A scene's provenance, plus how its pixels were brought onto the tile grid."""
    described = scene.describe()
    same_crs = scene.crs == grid.crs
    same_res = abs(scene.resolution[0] - grid.resolution) < 1e-6 * grid.resolution
    described["read_as"] = {
        "method": "window" if same_crs and same_res else "warped (bilinear, GDAL WarpedVRT)",
        "reprojected": None if same_crs else {"from": scene.crs.to_string(), "to": grid.crs.to_string()},
        "resampled": None if same_res else {"from_m": list(scene.resolution), "to_m": grid.resolution},
    }
    return described


def _date_range(scenes: list[Scene]) -> str | None:
    dates = sorted(s.acquired[:10] for s in scenes if s.acquired)
    if not dates:
        return None
    return dates[0] if dates[0] == dates[-1] else f"{dates[0]}/{dates[-1]}"


def _plain(value: Any) -> Any:
    """A config value as JSON holds it (paths as text)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple) and value and all(isinstance(v, Path) for v in value):
        return [str(v) for v in value]
    return value


def _write_run_json(
    run: RunFolder, grid: TileGrid, scenes: list[Scene], bundle: LoadedBundle, config: ScanConfig,
    summary: ScanSummary,
) -> None:
    payload = {
        "kind": "scan",
        "config": {k: _plain(v) for k, v in asdict(config).items()},
        "imagery_dates": _date_range(scenes),
        "grid": {"crs": grid.crs.to_string(), "bounds": list(grid.bounds), "resolution": grid.resolution,
                 "tile_size": grid.tile_size, "halo": grid.halo, "shape": list(grid.shape)},
        "inputs": {"scenes": [_describe_input(s, grid) for s in scenes]},
        "device": {"asked": config.device, "used": summary.device},
        "precision": {"asked": config.precision, "used": summary.precision},
        "detector": {"path": str(config.detector.resolve()), "sha256": bundle.sha256,
                     "architecture": bundle.card.architecture, "threshold": bundle.card.threshold},
        "versions": software_versions(),
        "tiles": {"total": summary.tiles, "ok": summary.done, "failed": len(summary.failed),
                  "skipped_on_resume": summary.skipped},
        "failed_tiles": [asdict(f) for f in summary.failed],
        "scenes_left_out": [asdict(s) for s in summary.scenes_left_out],
        "detections": summary.detections,
        "timings": {"total_seconds": summary.seconds,
                    **{f"{k}_seconds": round(v, 3) for k, v in summary.timings.items()}},
        "tile_work_seconds": summary.tile_work,
        "statement": "Detections are unverified leads, not findings; human verification is required "
                     "before any action.",
    }
    write_json(run.run_json, payload)
