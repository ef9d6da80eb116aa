"""Benchmark of the scan: end-to-end throughput against the model alone, memory by region size, workers.

Run by hand (not in CI)::

    .venv/bin/python benchmarks/bench_scan.py --repeats 3 --out benchmarks/out

It generates synthetic regions of 1x, 4x and 16x area (1024^2, 2048^2, 4096^2 px at 10 m), trains a
throwaway detector for a few steps (weights do not change the cost of a forward pass), and measures:

- model-only: the detector's forward pass + peak extraction over the same tiles held in memory,
  one (child) process, one torch thread;
- end-to-end: ``fieldtruth scan`` with one worker of one thread (the same compute), and with two;
- peak memory: the sum of resident memory of the scan's process tree, sampled every 50 ms;
- the number of tasks the scheduler saw for each scan.

Results print as a Markdown table; copy them into benchmarks/README.md.

With ``--port NAME`` it measures instead a real-data region: ``--copies`` x ``--copies`` copies of a
sen2ships port side by side (its own CRS and pixels, so the scan warps it to UTM as it does the ports),
scanned with ``--bundle`` (e.g. a vessels preset bundle of ``bench_detectors.py``; by default the network
of the preset ``--untrained`` names, with untrained weights, which cost the same) at each of
``--tile-sizes`` (``auto``: the core the scan chooses from the receptive field); model-only, one worker
and two workers side by side, interleaved, Mpx counted in the mosaic's source pixels::

    .venv/bin/python benchmarks/bench_scan.py --port busan --copies 3 --tile-sizes 512 auto --repeats 3

``--utm`` reprojects the mosaic once to UTM at the detector's pixel size, so the scan reads it without
warping (imagery delivered on the scan's grid). ``--device cuda`` measures the same on a GPU: the model
alone in batches of a block's tiles (chips read first), and the scan with each of ``--gpu-workers``
worker processes sharing the GPU, with the share of time the GPU was busy (NVML).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import shutil
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Self

import numpy as np
import psutil
import rasterio
import torch

from fieldtruth.detectors.bundle import LoadedBundle, ModelCard, load_bundle, save_bundle
from fieldtruth.detectors.config import PRESETS
from fieldtruth.detectors.device import resolve_precision
from fieldtruth.detectors.predict import detect_array, detect_arrays
from fieldtruth.detectors.registry import build_model
from fieldtruth.detectors.scangrid import default_halo, default_tile_size, scan_grid
from fieldtruth.detectors.sceneoffset import prepare_scenes
from fieldtruth.detectors.train import TrainConfig, train_detector
from fieldtruth.imagery.grid import TileGrid
from fieldtruth.imagery.read import read_chip
from fieldtruth.imagery.synthetic import generate_scene
from fieldtruth.imagery.target import grid_for_scene
from fieldtruth.ingest.scene import Scene, open_scene
from fieldtruth.pipelines.scan import ScanConfig, scan
from fieldtruth.pipelines.tilework import available_cores, tune_allocator
from fieldtruth.tests.data.shared import shared_data_root

SIZES = {"1x": 1024, "4x": 2048, "16x": 4096}


class Sampler:
    """Calls :meth:`sample` every ``interval`` seconds in a thread while its ``with`` block runs."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval, self._stop = interval, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def begin(self) -> bool:
        """Prepare to sample; False when there is nothing to sample here."""
        return True

    def sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        if not self.begin():
            return
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class PeakMemory(Sampler):
    """The largest resident memory of this process and all its children together."""

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(interval)
        self.peak, self._me = 0, psutil.Process()

    def sample(self) -> None:
        total = 0
        for proc in [self._me, *self._me.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        self.peak = max(self.peak, total)


def model_only(scene_dir: Path, bundle_path: Path, tile_size: int | None = 512,
               fused: bool = True, precision: str = "auto", device: str = "cpu") -> tuple[float, float]:
    """Wall and CPU seconds for the detector over every tile, chips in memory, in a child process (so its
    memory and allocator settings do not count in the scans measured next); ``fused`` False runs the
    network as saved (batch norm not folded: the path before issue 21)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(_model_only, scene_dir, bundle_path, tile_size, fused, precision, device).result()


def _model_only(
    scene_dir: Path, bundle_path: Path, tile_size: int | None, fused: bool, precision: str = "auto",
    device: str = "cpu",
) -> tuple[float, float]:
    """Wall and CPU seconds for the detector over every tile of the scan's grid (each chip read first, then
    timed), one thread, the workers' allocator; ``tile_size`` None: the scan's own choice. On a shared
    machine the CPU seconds of the one thread are what a core of its own would take. On a GPU every chip
    is read first, then all pass through the model in batches of a scan's block (after one batch to warm
    up, untimed)."""
    torch.set_num_threads(1)
    tune_allocator()
    precision = resolve_precision(precision, torch.device(device))
    bundle = load_bundle(bundle_path, precision=precision, device=device)
    bundle = bundle if fused else dataclasses.replace(bundle, runner=None)
    scene = prepare_scenes([open_scene(scene_dir)], bundle.card.bands, bundle.card.scene_offset)[0]
    grid = scan_grid(bundle, scene, tile_size=tile_size)
    if device == "cuda":
        return _model_only_gpu(bundle, scene, grid)
    wall = cpu = 0.0
    for tile in grid:
        chip = read_chip(scene, tile, tuple(bundle.card.bands))
        if chip.core_valid_fraction(tile.halo_px) == 0:  # as a scan does: no data in the core, no model
            continue
        started, started_cpu = time.perf_counter(), time.process_time()
        detect_array(bundle, chip.data, chip.valid)
        wall += time.perf_counter() - started
        cpu += time.process_time() - started_cpu
    return wall, cpu


def _model_only_gpu(bundle: LoadedBundle, scene: Scene, grid: TileGrid) -> tuple[float, float]:
    with ThreadPoolExecutor(available_cores()) as pool:  # reading is not what is timed: on every core
        read = list(pool.map(lambda tile: (tile, read_chip(scene, tile, tuple(bundle.card.bands))), grid))
    chips = [(chip.data, chip.valid) for tile, chip in read if chip.core_valid_fraction(tile.halo_px) > 0]
    batch = grid.default_block() ** 2
    detect_arrays(bundle, chips[:batch], batch=batch)
    started, started_cpu = time.perf_counter(), time.process_time()
    detect_arrays(bundle, chips, batch=batch)
    return time.perf_counter() - started, time.process_time() - started_cpu


class GpuBusy(Sampler):
    """The share of time the GPU ran a kernel, from NVML (None where NVML is absent)."""

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(interval)
        self.samples: list[float] = []
        self._handle = None

    def begin(self) -> bool:
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        except (ImportError, OSError, RuntimeError):  # no NVML here: no share to report
            return False
        return True

    def sample(self) -> None:
        import pynvml

        self.samples.append(pynvml.nvmlDeviceGetUtilizationRates(self._handle).gpu / 100)

    @property
    def share(self) -> float | None:
        return statistics.fmean(self.samples) if self.samples else None


def end_to_end(scene_dir: Path, bundle_path: Path, out: Path, workers: int, tile_size: int | None = 512,
               block: int | None = None, bands: bool = True, precision: str = "auto",
               device: str = "cpu", busy: list[float] | None = None) -> tuple[float, float, int, int]:
    """Seconds in all, seconds of the tile phase (reads, model, results written), peak memory, tiles; on a
    GPU, the share of the scan's time it was busy is appended to ``busy``."""
    shutil.rmtree(out, ignore_errors=True)
    gpu = GpuBusy() if device == "cuda" else nullcontext()
    with PeakMemory() as memory, gpu:
        started = time.perf_counter()
        summary = scan(ScanConfig(imagery=scene_dir, detector=bundle_path, out=out, workers=workers,
                                  tile_size=tile_size, block=block, worker_bands=bands, device=device,
                                  precision=precision))
        seconds = time.perf_counter() - started
    if busy is not None and isinstance(gpu, GpuBusy) and gpu.share is not None:
        busy.append(gpu.share)
    phases = ", ".join(f"{phase} {took:.1f} s" for phase, took in summary.timings.items())
    work = ", ".join(f"{kind} {took:.1f} s" for kind, took in summary.tile_work.items())
    print(f"  scan, {workers} worker(s): {phases}, in all {seconds:.1f} s; summed over tiles: {work}",
          flush=True)
    return seconds, summary.timings["tiles"], memory.peak, summary.tiles


def graph_size(scene_dir: Path, bundle_path: Path, out: Path) -> tuple[int, int, int]:
    """Tiles and tasks (blocks) of a scan, and the most tasks the scheduler held at once while it ran."""
    from distributed import LocalCluster

    shutil.rmtree(out, ignore_errors=True)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        peak, stop = [0], threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], len(cluster.scheduler.tasks))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        summary = scan(ScanConfig(imagery=scene_dir, detector=bundle_path, out=out, tile_size=512,
                                  scheduler=cluster.scheduler_address))
        stop.set()
        sampler.join()
    resolution = load_bundle(bundle_path).card.gsd_m
    grid = grid_for_scene(open_scene(scene_dir, hash_files=False), resolution=resolution, tile_size=512)
    grid_blocks = len(grid.blocks(grid.default_block()))
    return summary.tiles, grid_blocks, peak[0]


def http_bytes(scene_dir: Path, bundle_path: Path, out: Path, bands: bool) -> tuple[int, float]:
    """Bytes a two-worker scan fetches when its scene is read over HTTP (a loopback range server, the scene
    as a STAC Item), and the seconds of its tile phase."""
    import json
    import re

    from fieldtruth.tests.data.rangeserver import serve
    from fieldtruth.tests.data.stac import item_for_folder

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    with serve(scene_dir) as (base, requests):
        item = out / "item.json"
        item.write_text(json.dumps(item_for_folder(scene_dir, "remote", href_base=base).to_dict()))
        summary = scan(ScanConfig(imagery=item, detector=bundle_path, out=out / "run", workers=2,
                                  worker_bands=bands,
                                  allow_hosts=("127.0.0.1",)))
    fetched = 0
    for _, byte_range in requests.requests:
        if match := re.fullmatch(r"bytes=(\d+)-(\d+)", byte_range or ""):
            fetched += int(match.group(2)) - int(match.group(1)) + 1
    return fetched, summary.timings["tiles"]


def derived_scene(source: Path, out: Path, band_from: Callable, **meta: object) -> Path:
    """A scene folder made from ``source``'s: each band file ``band_from(src)`` -> ``(data, profile)``
    (written once, kept on later runs), its ``scene.json`` with the new size and ``meta``."""
    out.mkdir(parents=True, exist_ok=True)
    for band in sorted(source.glob("B*.tif")):
        target = out / band.name
        if target.exists():
            continue
        with rasterio.open(band) as src:
            data, profile = band_from(src)
        size = {"width": data.shape[1], "height": data.shape[0]}
        with rasterio.open(target, "w", **{**profile, **size}) as dst:
            dst.write(data, 1)
    record = json.loads((source / "scene.json").read_text())
    with rasterio.open(next(out.glob("B*.tif"))) as src:
        record.update(width=src.width, height=src.height, **meta)
    (out / "scene.json").write_text(json.dumps(record, indent=1))
    return out


def port_mosaic(port: Path, out: Path, copies: int) -> Path:
    """A scene folder of ``copies`` x ``copies`` copies of a real port side by side, in the port's CRS
    and pixels (tiled, deflate-compressed, as the port's own files)."""
    name = json.loads((port / "scene.json").read_text())["id"]
    return derived_scene(port, out, lambda src: (np.tile(src.read(1), (copies, copies)), src.profile),
                         id=f"{name}-x{copies}", labels=0)


def utm_mosaic(mosaic: Path, out: Path, resolution: float) -> Path:
    """The mosaic reprojected once to its UTM zone at ``resolution`` m, origin on multiples of it: the
    scan's own grid, so that it reads plain windows and warps nothing (as for imagery delivered in UTM at
    the detector's pixel size, e.g. Sentinel-2 L2A at 10 m)."""
    from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_bounds

    from fieldtruth.imagery.target import utm_crs_for

    with rasterio.open(next(mosaic.glob("B*.tif"))) as src:
        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
        crs = utm_crs_for((west + east) / 2, (south + north) / 2)
        transform, width, height = calculate_default_transform(
            src.crs, crs, src.width, src.height, *src.bounds, resolution=resolution)
    left = np.floor(transform.c / resolution) * resolution
    top = np.ceil(transform.f / resolution) * resolution
    transform = rasterio.Affine(resolution, 0, left, 0, -resolution, top)

    def reprojected(src: rasterio.DatasetReader) -> tuple[np.ndarray, dict]:
        data = np.zeros((height + 1, width + 1), dtype=src.dtypes[0])
        reproject(rasterio.band(src, 1), data, dst_transform=transform, dst_crs=crs,
                  resampling=Resampling.bilinear)
        return data, {**src.profile, "crs": crs, "transform": transform, "nodata": 0}

    name = json.loads((mosaic / "scene.json").read_text())["id"]
    return derived_scene(mosaic, out, reprojected, id=f"{name}-utm", gsd_m=resolution, crs=crs.to_string())


def untrained_bundle(path: Path, scene_dir: Path, preset: str = "vessels") -> Path:
    """A bundle of the preset's network with untrained weights (the cost of a pass does not depend on
    them), its card's statistics from the scene; written once."""
    if path.exists():
        return path
    config = PRESETS[preset]
    scene = open_scene(scene_dir)
    data = scene.read(config.bands).reshape(len(config.bands), -1)
    mean, std = tuple(map(float, data.mean(axis=1))), tuple(map(float, data.std(axis=1) + 1.0))
    args: dict = {**config.architecture_args, "in_channels": len(config.bands), "num_classes": 1}
    if args.get("indices"):
        args.update(norm_mean=list(mean), norm_std=list(std))
    if config.ensemble > 1:
        member = {"architecture": config.architecture, "args": args}
        architecture, args = "ensemble", {"in_channels": args["in_channels"], "num_classes": 1,
                                          "members": [member] * config.ensemble}
    else:
        architecture = config.architecture
    torch.manual_seed(0)
    model = build_model(architecture, args).eval()
    card = ModelCard(architecture=architecture, architecture_args=args, bands=tuple(config.bands), gsd_m=10.0,
                     norm_mean=mean, norm_std=std, classes=("vessel",), threshold=0.5,
                     min_distance_px=config.validation.min_distance_px,
                     receptive_field_px=int(model.receptive_field_px), scene_offset=dict(config.scene_offset),
                     name=f"untrained-{preset}")
    save_bundle(path, model, card)
    return path


def real_region(args: argparse.Namespace) -> None:
    """The ``--port`` benchmark (see the module docstring)."""
    port = shared_data_root() / "sen2ships" / args.port
    scene = port_mosaic(port, args.out / f"{args.port}-x{args.copies}", args.copies)
    untrained = args.out / f"untrained-{args.untrained}.safetensors"
    bundle = args.bundle or untrained_bundle(untrained, scene, args.untrained)
    if args.utm:
        gsd = load_bundle(bundle).card.gsd_m
        scene = utm_mosaic(scene, args.out / f"{args.port}-x{args.copies}-utm-{gsd:g}", gsd)
    with rasterio.open(next(scene.glob("B*.tif"))) as src:
        mpx = src.width * src.height / 1e6
    sizes = [None if size == "auto" else int(size) for size in args.tile_sizes]
    precisions = [resolve_precision(p, torch.device(args.device)) for p in args.precisions]
    worker_counts = () if args.model_only else args.gpu_workers if args.device == "cuda" else (1, 2)
    measures = ("model", "cpu", "1w", "2w", *(f"{n}w" for n in worker_counts),
                *(f"busy{n}" for n in worker_counts))
    runs: dict[tuple, dict[str, list[float]]] = {(s, p): {m: [] for m in measures}
                                                 for s in sizes for p in precisions}
    before: list[float] = []
    for i in range(args.repeats):  # interleaved, so drift in the machine's speed hits all alike
        if args.unfused_too:
            before.append(model_only(scene, bundle, 512, fused=False)[1])
        for size, precision in runs:
            wall, cpu = model_only(scene, bundle, size, precision=precision, device=args.device)
            runs[size, precision]["model"].append(wall)
            runs[size, precision]["cpu"].append(cpu)
            for workers in worker_counts:
                out = args.out / f"run-{args.port}-{size}-{workers}-{i}"
                tiles = end_to_end(scene, bundle, out, workers, size, precision=precision, device=args.device,
                                   busy=runs[size, precision][f"busy{workers}"])[1]
                runs[size, precision][f"{workers}w"].append(tiles)
        print(f"repeat {i + 1} of {args.repeats} done ({os.getloadavg()[0]:.1f} load)", flush=True)
    loaded = load_bundle(bundle)
    card = loaded.card
    where = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"{args.port} x {args.copies * args.copies} on {where}: {mpx:.1f} Mpx (source pixels), detector "
          f"{card.name or ''} {card.architecture} (receptive field {card.receptive_field_px} px, halo "
          f"{default_halo(loaded)} px); median of {args.repeats}")
    if before:
        print(f"before (512 px cores, batch norm not folded): model-only "
              f"{mpx / statistics.median(before):.3f} Mpx per CPU second")
    print(
        "| tile core | precision | model-only Mpx per CPU s | model-only Mpx/s (wall) | "
        "scan 1w tiles Mpx/s | 1w / model | scan 2w tiles Mpx/s | 2w / model | 2w / 1w |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for (size, precision), r in runs.items():
        model, cpu = statistics.median(r["model"]), statistics.median(r["cpu"])
        one, two = (statistics.median(r[k]) if r[k] else float("nan") for k in ("1w", "2w"))
        label = size or f"auto ({default_tile_size(loaded)})"
        print(
            f"| {label} | {precision} | {mpx / cpu:.3f} | {mpx / model:.3f} | {mpx / one:.3f} | "
            f"{model / one:.2f} | {mpx / two:.3f} | {model / two:.2f} | {one / two:.2f} |"
        )
        if args.device == "cuda":
            print_gpu_scans(mpx, model, r, worker_counts, label, precision)


def print_gpu_scans(mpx: float, model: float, r: dict[str, list[float]], worker_counts: tuple[int, ...],
                    label: object, precision: str) -> None:
    """One line for each number of worker processes sharing the GPU: the scan, its ratio to the model
    alone, and the share of the time the GPU was busy."""
    for n in worker_counts:
        scan_seconds = statistics.median(r[f"{n}w"])
        busy = statistics.median(r[f"busy{n}"]) if r[f"busy{n}"] else float("nan")
        print(f"GPU scan ({label}, {precision}), {n} worker process(es): tiles "
              f"{mpx / scan_seconds:.1f} Mpx/s ({model / scan_seconds:.2f}x the model alone), "
              f"GPU busy {busy:.0%} (NVML, median)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES))
    parser.add_argument("--tile-size", type=int, default=512)
    parser.add_argument(
        "--blocks",
        type=int,
        nargs="+",
        default=None,
        help="tiles per side of a task's block; several are measured side by side [default: the scan's]",
    )
    parser.add_argument(
        "--without-bands-too",
        action="store_true",
        help="also measure each scan with blocks handed out in turn (no worker bands), side by side",
    )
    parser.add_argument(
        "--http",
        action="store_true",
        help="also measure the bytes a two-worker scan of the largest region fetches over "
        "HTTP, with "
        "and without worker bands",
    )
    parser.add_argument("--port", default=None, help="a sen2ships port: measure a mosaic of it instead")
    parser.add_argument("--copies", type=int, default=3, help="copies of the port per side (--port)")
    parser.add_argument(
        "--bundle",
        type=Path,
        default=None,
        help="detector bundle (--port) [default: the vessels preset's network, untrained]",
    )
    parser.add_argument("--model-only", action="store_true", help="no scans, the model alone (--port)")
    parser.add_argument(
        "--unfused-too",
        action="store_true",
        help="also the model alone as before issue 21: 512 px cores, batch norm not folded",
    )
    parser.add_argument(
        "--untrained",
        default="vessels",
        help="without --bundle: the preset whose network is measured, untrained (--port)",
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["auto"],
        help="--port: the model's arithmetic(s), side by side (auto: the scan's default)",
    )
    parser.add_argument(
        "--tile-sizes", nargs="+", default=["512", "auto"], help="tile cores to compare (--port)"
    )
    parser.add_argument(
        "--utm", action="store_true",
        help="--port: reproject the mosaic to UTM at the detector's pixel size first, so the scan warps "
             "nothing (imagery delivered on the scan's grid)",
    )
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), default="cpu",
        help="--port: where the model runs",
    )
    parser.add_argument(
        "--gpu-workers", type=int, nargs="+", default=[1],
        help="--device cuda: worker processes sharing the GPU, each count measured side by side",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.port:
        real_region(args)
        return
    bundle = args.out / "bench.safetensors"
    if not bundle.exists():
        train = generate_scene(args.out / "train", seed=11, size=512).path
        config = TrainConfig.from_mapping(
            {"steps": 10, "num_threads": 2, "validation": {"tile": 256}}, "demo"
        )
        train_detector([train], bundle, config)
    blocks: list[int | None] = args.blocks or [None]  # None: the scan's default for the grid
    variants = [(b, bands) for b in blocks for bands in ([True, False] if args.without_bands_too else [True])]
    rows = []
    for name in args.sizes:
        size = SIZES[name]
        scene = args.out / f"scene-{name}"
        if not (scene / "scene.json").exists():
            generate_scene(scene, seed=21, size=size)
        mpx = size * size / 1e6
        models: list[float] = []
        one: dict[tuple[int | None, bool], list] = {v: [] for v in variants}
        two: dict[tuple[int | None, bool], list] = {v: [] for v in variants}
        for i in range(args.repeats):  # interleaved, so drift in the machine's speed hits all alike
            models.append(model_only(scene, bundle, args.tile_size)[0])
            for v in variants:
                for workers, runs in ((1, one), (2, two)):
                    out = args.out / f"run-{name}-{workers}-{i}"
                    runs[v].append(end_to_end(scene, bundle, out, workers, args.tile_size, *v))
        model = statistics.median(models)
        for v in variants:
            t1, t2 = statistics.median(r[0] for r in one[v]), statistics.median(r[0] for r in two[v])
            p1, p2 = statistics.median(r[1] for r in one[v]), statistics.median(r[1] for r in two[v])
            label = f"{v[0] or 'default'}{'' if v[1] else ', in turn'}"
            rows.append(
                (
                    name,
                    label,
                    mpx,
                    mpx / model,
                    mpx / t1,
                    mpx / p1,
                    model / p1,
                    mpx / t2,
                    mpx / p2,
                    p1 / p2,
                    max(r[2] for r in one[v]) / 2**20,
                    max(r[2] for r in two[v]) / 2**20,
                    one[v][0][3],
                )
            )
        print(f"{name}: done", flush=True)
    print(
        "| area | block | Mpx | model-only Mpx/s | scan 1w Mpx/s (all) | scan 1w Mpx/s (tiles) | "
        "tiles 1w / model | scan 2w Mpx/s (all) | scan 2w Mpx/s (tiles) | 2w/1w (tiles) | peak MiB 1w | "
        "peak MiB 2w | tiles |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        cells = ["{}", "{}", "{:.1f}", *["{:.2f}"] * 7, "{:.0f}", "{:.0f}", "{}"]
        print(("| " + " | ".join(cells) + " |").format(*row))
    print("km2/s at 10 m = Mpx/s x 100")
    if args.http:
        scene = args.out / f"scene-{args.sizes[-1]}"
        whole = sum(p.stat().st_size for p in scene.glob("*.tif"))
        fetched: dict[bool, list[tuple[int, float]]] = {True: [], False: []}
        for i in range(args.repeats):
            for bands in (True, False):
                fetched[bands].append(http_bytes(scene, bundle, args.out / f"run-http-{bands}-{i}", bands))
        for bands, runs in fetched.items():
            print(
                f"over HTTP, {'worker bands' if bands else 'blocks in turn'}: "
                f"{statistics.median(r[0] for r in runs) / 2**20:.1f} MiB fetched of "
                f"{whole / 2**20:.1f} MiB in the band files; tile phase "
                f"{statistics.median(r[1] for r in runs):.2f} s (median of {len(runs)})"
            )
    ten = args.out / "scene-10mpx"
    if not (ten / "scene.json").exists():
        generate_scene(ten, seed=41, size=3200)
    tiles, tasks, peak = graph_size(ten, bundle, args.out / "run-10mpx")
    print(
        f"10.24 Mpx scene: {tiles} tiles in {tasks} tasks; at most {peak} tasks held by the scheduler at once"
    )


if __name__ == "__main__":
    main()
