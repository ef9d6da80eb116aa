"""``fieldtruth scan --dry-run``: the plan of a scan and an estimate of its time, with nothing written.

The plan comes from :func:`~fieldtruth.pipelines.preflight.preflight` (every check a scan makes before
it starts). The estimate comes from this machine: the tile in the middle of the grid is read once and
passed through the detector twice with the model threads the scan's workers would use (the faster pass
counts: the first one also warms the model up), and the tiles are shared out over the workers as a
local scan shares them (reads hide behind the model where a core is free for them, see
:func:`~fieldtruth.pipelines.tilework.worker_threads_for`). It leaves out the cluster's start (seconds)
and the scene offsets some detectors compute first, and a remote scan's reads vary with the network:
take it as the order of magnitude.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple

from fieldtruth.detectors.device import device_memory
from fieldtruth.detectors.predict import detect_array
from fieldtruth.imagery.read import read_mosaic
from fieldtruth.pipelines.preflight import ScanPlan, preflight
from fieldtruth.pipelines.tilework import available_cores, local_workers, worker_threads_for

if TYPE_CHECKING:
    from fieldtruth.pipelines.scan import ScanConfig


class TileTiming(NamedTuple):
    """Seconds to read one tile (with its halo) and to pass it through the detector once."""

    read_seconds: float
    model_seconds: float


def time_one_tile(plan: ScanPlan, threads: int) -> TileTiming:
    """Read the middle tile of the plan's grid and time the detector on it with ``threads`` torch threads.

    Raises:
        ImageryReadError: the tile could not be read.
    """
    import torch

    rows, cols = plan.grid.shape
    tile = plan.grid.tile(rows // 2, cols // 2)
    started = time.perf_counter()
    chip = read_mosaic(plan.scenes, tile, tuple(plan.bundle.card.bands))
    read = time.perf_counter() - started
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        passes = []
        for _ in range(2):
            started = time.perf_counter()
            detect_array(plan.bundle, chip.data, chip.valid)
            passes.append(time.perf_counter() - started)
    finally:
        torch.set_num_threads(before)
    return TileTiming(read, min(passes))


def estimate_seconds(tiles: int, timing: TileTiming, workers: int, threads: int, cores: int) -> float:
    """Seconds a local scan of ``tiles`` should take on ``workers`` x ``threads`` model threads."""
    parallel = max(1, min(workers, cores // max(1, threads)))
    reads_hidden = worker_threads_for(threads, workers, cores) > threads
    per_tile = (max(timing.read_seconds, timing.model_seconds) if reads_hidden
                else timing.read_seconds + timing.model_seconds)
    return tiles * per_tile / parallel


def duration(seconds: float) -> str:
    """``0.4 s``, ``42 s``, ``3.5 min``, ``2.1 h``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def dry_run_report(config: ScanConfig) -> list[str]:
    """Check everything a scan checks, time the detector on one tile, and describe the plan in lines.

    Raises:
        PreflightError: as :func:`~fieldtruth.pipelines.preflight.preflight`.
        ImageryReadError: the tile timed could not be read.
    """
    plan = preflight(config)
    grid, card = plan.grid, plan.bundle.card
    lines = [f"plan: {len(plan.scenes)} scene(s) -> {len(grid)} tiles of {grid.tile_size} px "
             f"(+{grid.halo} px halo, read {plan.block} x {plan.block} per task) on {grid.crs} at "
             f"{grid.resolution:g} m: {plan.megapixels:.1f} Mpx scanned, {plan.read_megapixels:.1f} Mpx read"]
    for scene in plan.scenes:
        facts = [scene.acquired[:10] if scene.acquired else "date unknown",
                 *([str(scene.metadata["platform"])] if scene.metadata.get("platform") else []),
                 f"{scene.width} x {scene.height} px", f"{plan.ground_m[scene.id]:.3g} m on the ground",
                 scene.crs.to_string(), "bands " + " ".join(scene.band_names)
                 + (" + cloud mask" if "scl" in scene.bands else "")]
        if scene.metadata.get("cloud_cover") is not None:
            facts.append(f"cloud {float(scene.metadata['cloud_cover']):.3g} %")
        lines.append(f"scene {scene.id}: " + ", ".join(facts))
    lines.append(f"detector: {card.name or card.architecture} ({plan.bundle.sha256[:12]}), reads "
                 f"{', '.join(card.bands)} at {card.gsd_m:g} m; runs on the {plan.device.device.type}"
                 + (f" ({plan.device.note})" if plan.device.note else ""))
    timing = time_one_tile(plan, config.threads_per_worker)
    lines.append(f"timing: one tile read in {timing.read_seconds:.2f} s, one detector pass in "
                 f"{timing.model_seconds:.2f} s on {config.threads_per_worker} thread(s), on this machine")
    if config.scheduler:
        per_thread = estimate_seconds(len(grid), timing, 1, config.threads_per_worker, available_cores())
        lines.append(f"estimate: about {duration(per_thread)} of work for one worker of the scheduler; "
                     "divide by its workers (cluster start not included)")
    else:
        workers = local_workers(config.workers, plan.device.device.type == "cuda",
                                gpu_memory=device_memory(plan.device.device))
        seconds = estimate_seconds(len(grid), timing, workers, config.threads_per_worker, available_cores())
        lines.append(f"estimate: about {duration(seconds)} on {workers} local worker(s) x "
                     f"{config.threads_per_worker} model thread(s) (cluster start not included)")
    lines.append("dry run: nothing written, no cluster started; without --dry-run the scan writes "
                 f"{config.out}")
    return lines
