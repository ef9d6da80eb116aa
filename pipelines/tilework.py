"""The work done for a block of tiles on a Dask worker: read the chips, detect, keep the cores' detections.

The detector is loaded once per worker by :class:`DetectorPlugin` (its bytes travel once to each worker,
never inside tasks); tasks carry only the scene description and the tiles. A tile that cannot be read
returns a failed result naming the file, and the rest of the scan goes on.

Tasks are blocks of neighbouring tiles read in one window. Reads hide behind compute where a core is
free for them: a worker then runs one more task thread than it has model slots, so while one task's
tiles pass through the model, the next task reads its block (GDAL releases the GIL). The model slots
are a semaphore in the plugin, so the model never runs on more threads than asked for.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import tempfile
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from distributed import Worker, WorkerPlugin, get_worker
from rasterio.errors import RasterioError

from fieldtruth.detectors.bundle import LoadedBundle, load_bundle
from fieldtruth.detectors.model import output_stride
from fieldtruth.detectors.predict import (
    PixelDetection,
    detect_array,
    detect_array_with_scores,
    detect_arrays,
)
from fieldtruth.errors import FieldtruthError
from fieldtruth.imagery.chip import Chip
from fieldtruth.imagery.grid import Tile, TileBlock
from fieldtruth.imagery.read import read_block, read_mosaic
from fieldtruth.ingest.scene import Scene
from fieldtruth.pipelines.heatmap import core_scores
from fieldtruth.pipelines.tileresult import FAILED, TileDetection, TileResult

log = logging.getLogger(__name__)

PLUGIN_NAME = "fieldtruth-detector"


#: glibc mallopt parameters: how much free memory the heap keeps before trimming, the size from which
#: allocations are mmapped, and the most malloc arenas.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8

#: Bytes from which glibc mmaps an allocation, and of free heap it keeps, in workers (see
#: :func:`tune_allocator`).
MMAP_THRESHOLD, TRIM_THRESHOLD = 256 << 20, 512 << 20


def allocator_environ() -> dict[str, str]:
    """The settings of :func:`tune_allocator` as glibc's environment variables, for worker processes started
    by this program: read by glibc before the process has a thread, so every thread shares the main arena
    from its first allocation (:func:`tune_allocator` in a running worker can only cap arenas that threads
    have not made yet)."""
    return {
        "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD),
        "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD),
        "MALLOC_ARENA_MAX": "1",
    }


def tune_allocator(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Let glibc reuse the heap for the model's large, short-lived tensors instead of mmapping each one.

    Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` in workers, which also freezes glibc's mmap
    threshold at 128 KiB: every activation tensor is then mmapped, zero-filled by the kernel and
    unmapped again, and a forward pass ran 1.8x slower (measured on this project's CentreNet). Here large
    allocations stay on the heap up to ``mmap_threshold`` and the heap keeps at most ``trim_threshold``
    of free memory: memory stays bounded by the tile size, and the pass runs at full speed. All threads
    share the main arena: tasks run in worker threads, whose own arenas are mmapped heaps of at most
    64 MiB that large activations do not fit (a forward pass in a thread ran 11% slower without this).
    Local workers get the same settings from their environment at start (:func:`allocator_environ`);
    this call covers workers of a cluster started elsewhere.

    Returns:
        True when the settings were applied (Linux with glibc), False elsewhere.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        return (
            bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold))
            and bool(libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold))
            and bool(libc.mallopt(_M_ARENA_MAX, 1))
        )
    except (OSError, AttributeError):
        log.debug("not glibc: allocator left as it is")
        return False


class DetectorPlugin(WorkerPlugin):
    """Loads the detector bundle once on each worker and keeps it there for every task.

    Args:
        bundle_bytes: the bundle file's bytes (small), so workers need no shared filesystem.
        expected_sha256: the bundle's sha256 as the client computed it; loading checks it.
        threads: torch intra-op threads per model call.
        heatmap_factor: also return each tile's scores in cells of this many pixels (``scan --heatmap``);
            None for none.
        device: where the model runs (``cpu`` or ``cuda``, as resolved by the scan's preflight).
        batch: tiles of one block passed through the model together (more than 1 on a GPU).
        precision: the model's arithmetic (``float32`` or ``bfloat16``, as resolved by the preflight).

    On a worker with ``n`` task threads, ``max(1, (n - 1) // threads)`` tasks may run the model at once
    (one on a GPU, which runs one batch at a time); the remaining task threads read the next blocks
    meanwhile.
    """

    name = PLUGIN_NAME

    def __init__(
        self,
        bundle_bytes: bytes,
        expected_sha256: str,
        threads: int = 1,
        heatmap_factor: int | None = None,
        device: str = "cpu",
        batch: int = 1,
        precision: str = "float32",
    ) -> None:
        self.bundle_bytes = bundle_bytes
        self.expected_sha256 = expected_sha256
        self.threads = threads
        self.heatmap_factor = heatmap_factor
        self.device, self.batch, self.precision = device, batch, precision
        self.bundle: LoadedBundle | None = None
        self.model_slots: threading.Semaphore | None = None

    def setup(self, worker: Worker) -> None:
        import torch

        torch.set_num_threads(self.threads)
        tune_allocator()
        with tempfile.TemporaryDirectory(prefix="fieldtruth-bundle-") as tmp:
            path = Path(tmp) / "bundle.safetensors"
            path.write_bytes(self.bundle_bytes)
            self.bundle = load_bundle(path, device=self.device, precision=self.precision)
        if self.bundle.sha256 != self.expected_sha256:
            raise FieldtruthError(
                f"detector bundle on worker {worker.address} has sha256 {self.bundle.sha256!r}, "
                f"expected {self.expected_sha256!r}"
            )
        self.bundle_bytes = b""
        slots = 1 if self.device == "cuda" else model_slots(worker.state.nthreads, self.threads)
        self.model_slots = threading.Semaphore(slots)
        log.info(
            "worker %s loaded detector %s (%d model slot(s))",
            worker.address,
            self.expected_sha256[:12],
            slots,
        )


def model_slots(task_threads: int, torch_threads: int) -> int:
    """How many tasks of a worker may run the model at once, keeping one task thread (if it has more than
    one) free for reading."""
    return max(1, (task_threads - 1) // max(1, torch_threads))


def worker_threads_for(
    torch_threads: int, workers: int = 1, cores: int | None = None, gpu: bool = False,
) -> int:
    """Task threads a local worker needs: one model slot of ``torch_threads``, plus one reading ahead
    while the workers' model threads leave a core free for it. GPU workers share the cores between them,
    every one of their threads reading while one drives the GPU: the GPU outpaces a reader (GDAL releases
    the GIL).

    When the models fill every core, a reader thread only takes CPU from them: two workers on two cores
    scanned 10% faster with each reading and computing in turn (see benchmarks/README.md).
    """
    cores = cores or available_cores()
    if gpu:
        return max(2, cores // max(1, workers))
    return torch_threads + (1 if workers * torch_threads < cores else 0)


#: Local workers of a scan on the CPU unless asked otherwise.
CPU_WORKERS = 2
#: Cores per worker process of a scan on a GPU unless asked otherwise (see :func:`local_workers`).
CORES_PER_GPU_WORKER = 4
#: GPU memory a worker process may take: its CUDA context and a block's batch of activations (2.4-2.5 GiB
#: measured for the vessels preset's 1,024 px cores, blocks of 2 x 2, float32; benchmarks/README.md).
GPU_MEMORY_PER_WORKER = 3 << 30


def local_workers(
    asked: int | None, gpu: bool, cores: int | None = None, gpu_memory: int | None = None,
) -> int:
    """Worker processes of a local cluster: ``asked``, else :data:`CPU_WORKERS` on the CPU, else one per
    :data:`CORES_PER_GPU_WORKER` cores sharing the GPU, as many as its ``gpu_memory`` (bytes) holds.

    GPU workers are processes, not threads of one: GDAL reads of one process's threads hinder each
    other (16 threads of one process spent 1.4x the time per read of 4 processes of 4 threads each, and
    the scan ran 1.28x as fast with the four; benchmarks/README.md).
    """
    if asked is not None:
        return asked
    if not gpu:
        return CPU_WORKERS
    by_cores = (cores or available_cores()) // CORES_PER_GPU_WORKER
    by_memory = gpu_memory // GPU_MEMORY_PER_WORKER if gpu_memory else by_cores
    return max(1, min(by_cores, by_memory))


def available_cores() -> int:
    """CPU cores this process may run on (its affinity where the system tells, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def worker_plugin() -> DetectorPlugin:
    """The detector plugin of the current worker, its bundle loaded."""
    plugin = get_worker().plugins[PLUGIN_NAME]
    if plugin.bundle is None:  # pragma: no cover - setup always runs before tasks
        raise FieldtruthError("the detector plugin did not load its bundle on this worker")
    return plugin


def process_block(scenes: list[Scene], block: TileBlock) -> list[TileResult]:
    """Detect in each tile of a block; return their results (as :func:`detect_block`), each naming the
    worker."""
    plugin = worker_plugin()
    results = detect_block(
        plugin.bundle,
        scenes,
        block,
        model_slot=plugin.model_slots,
        heatmap_factor=plugin.heatmap_factor,
        batch=plugin.batch,
    )
    address = get_worker().address
    return [dataclasses.replace(result, worker=address) for result in results]


def detect_block(
    bundle: LoadedBundle,
    scenes: list[Scene],
    block: TileBlock,
    model_slot: AbstractContextManager[Any] | None = None,
    heatmap_factor: int | None = None,
    batch: int = 1,
) -> list[TileResult]:
    """Read a block's window once, then detect in each of its tiles as :func:`detect_tile` does (with
    ``batch`` > 1 and no heatmap, tiles of one shape pass through the model together: on a GPU).

    ``model_slot`` is held while the block's tiles pass through the model, so that one task's tiles run
    back to back while the next task reads. When the window cannot be read (a truncated file), each tile
    is read alone, so only the tiles whose own pixels are unreadable fail (from a warped scene, a tile read
    alone can differ slightly from its block read: GDAL's approximate warp depends on the window).
    """
    started = time.perf_counter()
    try:
        chips = read_block(scenes, block, tuple(bundle.card.bands))
    except READ_ERRORS as exc:
        log.info(
            "block %s could not be read in one window (%s); reading its tiles one by one",
            block.window.id,
            exc,
        )
        return [detect_tile(bundle, scenes, tile, model_slot, heatmap_factor) for tile in block.tiles]
    read_each = (time.perf_counter() - started) / len(chips)
    waited = time.perf_counter()
    with model_slot or nullcontext():
        wait_each = (time.perf_counter() - waited) / len(chips)
        if batch > 1 and heatmap_factor is None:
            return _detect_batch(bundle, chips, block.tiles, batch, read_each, wait_each)
        return [
            _detect_chip(
                bundle,
                chip,
                tile,
                read_seconds=read_each,
                wait_seconds=wait_each,
                heatmap_factor=heatmap_factor,
            )
            for tile, chip in zip(block.tiles, chips, strict=True)
        ]


def _detect_batch(
    bundle: LoadedBundle,
    chips: list[Chip],
    tiles: tuple[Tile, ...],
    batch: int,
    read_each: float,
    wait_each: float,
) -> list[TileResult]:
    """:func:`_detect_chip` for a block's tiles, those with data in their core passed through the model in
    batches; the model's time is shared out equally among them."""
    started = time.perf_counter()
    valid = [chip.core_valid_fraction(tile.halo_px) for chip, tile in zip(chips, tiles, strict=True)]
    todo = [i for i, fraction in enumerate(valid) if fraction > 0]
    found = detect_arrays(bundle, [(chips[i].data, chips[i].valid) for i in todo], batch=batch)
    model_each = (time.perf_counter() - started) / max(1, len(todo))
    results = []
    for i, (chip, tile) in enumerate(zip(chips, tiles, strict=True)):
        if i not in todo:
            results.append(
                TileResult(
                    tile.id,
                    valid_fraction=valid[i],
                    read_seconds=round(read_each, 4),
                    seconds=round(read_each + wait_each, 4),
                )
            )
            continue
        detections = _in_core(found[todo.index(i)], chip, tile)
        results.append(
            TileResult(
                tile.id,
                valid_fraction=valid[i],
                detections=detections,
                read_seconds=round(read_each, 4),
                wait_seconds=round(wait_each, 4),
                model_seconds=round(model_each, 4),
                seconds=round(read_each + wait_each + model_each, 4),
            )
        )
    return results


def _in_core(found: list[PixelDetection], chip: Chip, tile: Tile) -> tuple[TileDetection, ...]:
    """The detections of a tile's chip whose centre lies in the tile's core, in the grid's CRS."""
    kept = []
    for d in found:
        x, y = chip.transform * (d.col, d.row)
        if tile.in_core(x, y):
            kept.append(TileDetection(x, y, float(d.score), d.label))
    return tuple(kept)


def detect_tile(
    bundle: LoadedBundle,
    scenes: list[Scene],
    tile: Tile,
    model_slot: AbstractContextManager[Any] | None = None,
    heatmap_factor: int | None = None,
) -> TileResult:
    """Read one tile, run the detector, and keep only detections whose centre lies in the tile's core.

    ``model_slot`` is held while the model runs (not while reading), so reads of other tasks overlap it.
    The result records the seconds spent reading, waiting for the model slot and in the model; with
    ``heatmap_factor``, also the scores over its core (:func:`fieldtruth.pipelines.heatmap.core_scores`).
    """
    started = time.perf_counter()
    try:
        chip = read_mosaic(scenes, tile, tuple(bundle.card.bands))
    except READ_ERRORS as exc:
        log.warning("tile %s failed: %s", tile.id, exc)
        return TileResult(tile.id, status=FAILED, error=f"{type(exc).__name__}: {exc}")
    read_seconds = time.perf_counter() - started
    waited = time.perf_counter()
    with model_slot or nullcontext():
        return _detect_chip(
            bundle,
            chip,
            tile,
            read_seconds=read_seconds,
            wait_seconds=time.perf_counter() - waited,
            heatmap_factor=heatmap_factor,
        )


#: What a read of broken or missing imagery raises; a tile meeting one fails alone.
READ_ERRORS = (FieldtruthError, RasterioError, OSError, KeyError)


def _detect_chip(
    bundle: LoadedBundle,
    chip: Chip,
    tile: Tile,
    *,
    read_seconds: float,
    wait_seconds: float,
    heatmap_factor: int | None = None,
) -> TileResult:
    """Detect in a tile's chip (the model slot held by the caller) and keep the core's detections."""
    started = time.perf_counter()
    core_valid = chip.core_valid_fraction(tile.halo_px)
    if core_valid <= 0:
        return TileResult(
            tile.id,
            valid_fraction=core_valid,
            read_seconds=round(read_seconds, 4),
            seconds=round(read_seconds + wait_seconds + time.perf_counter() - started, 4),
        )
    scores = None
    if heatmap_factor is None:
        found_all = detect_array(bundle, chip.data, chip.valid)
    else:
        found_all, cells = detect_array_with_scores(bundle, chip.data, chip.valid)
        if cells is not None:
            scores = core_scores(cells, output_stride(bundle.model), chip.valid, tile, heatmap_factor)
    detections = _in_core(found_all, chip, tile)
    model_seconds = time.perf_counter() - started
    return TileResult(
        tile.id,
        valid_fraction=core_valid,
        detections=detections,
        read_seconds=round(read_seconds, 4),
        wait_seconds=round(wait_seconds, 4),
        model_seconds=round(model_seconds, 4),
        seconds=round(read_seconds + wait_seconds + time.perf_counter() - started, 4),
        heatmap=scores,
    )
