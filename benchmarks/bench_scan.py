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
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import statistics
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psutil
import torch

from fieldtruth.detectors.bundle import load_bundle
from fieldtruth.detectors.predict import detect_array
from fieldtruth.detectors.scangrid import default_halo
from fieldtruth.detectors.train import TrainConfig, train_detector
from fieldtruth.imagery.read import read_chip
from fieldtruth.imagery.synthetic import generate_scene
from fieldtruth.imagery.target import grid_for_scene
from fieldtruth.ingest.scene import open_scene
from fieldtruth.pipelines.scan import ScanConfig, scan
from fieldtruth.pipelines.tilework import tune_allocator

SIZES = {"1x": 1024, "4x": 2048, "16x": 4096}


class PeakMemory:
    """Samples the resident memory of this process and all its children."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def model_only(scene_dir: Path, bundle_path: Path, tile_size: int = 512) -> float:
    """Seconds for the detector over every tile, chips in memory, in a child process (so its memory and
    allocator settings do not count in the scans measured next)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(_model_only, scene_dir, bundle_path, tile_size).result()


def _model_only(scene_dir: Path, bundle_path: Path, tile_size: int) -> float:
    """Seconds for the detector over every tile, chips already in memory, one thread, the workers' allocator."""
    torch.set_num_threads(1)
    tune_allocator()
    bundle = load_bundle(bundle_path)
    scene = open_scene(scene_dir)
    grid = grid_for_scene(scene, resolution=bundle.card.gsd_m, tile_size=tile_size, halo=default_halo(bundle))
    chips = [read_chip(scene, tile, tuple(bundle.card.bands)) for tile in grid]
    started = time.perf_counter()
    for chip in chips:
        detect_array(bundle, chip.data, chip.valid)
    return time.perf_counter() - started


def end_to_end(scene_dir: Path, bundle_path: Path, out: Path, workers: int, tile_size: int = 512,
               block: int | None = None, bands: bool = True) -> tuple[float, float, int, int]:
    """Seconds in all, seconds of the tile phase (reads, model, results written), peak memory, tiles."""
    shutil.rmtree(out, ignore_errors=True)
    with PeakMemory() as memory:
        started = time.perf_counter()
        summary = scan(ScanConfig(imagery=scene_dir, detector=bundle_path, out=out, workers=workers, tile_size=tile_size,
                                  block=block, worker_bands=bands))
        seconds = time.perf_counter() - started
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
    grid = grid_for_scene(open_scene(scene_dir, hash_files=False), resolution=load_bundle(bundle_path).card.gsd_m, tile_size=512)
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
        summary = scan(ScanConfig(imagery=item, detector=bundle_path, out=out / "run", workers=2, worker_bands=bands,
                                  allow_hosts=("127.0.0.1",)))
    fetched = 0
    for _, byte_range in requests.requests:
        if match := re.fullmatch(r"bytes=(\d+)-(\d+)", byte_range or ""):
            fetched += int(match.group(2)) - int(match.group(1)) + 1
    return fetched, summary.timings["tiles"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES))
    parser.add_argument("--tile-size", type=int, default=512)
    parser.add_argument("--blocks", type=int, nargs="+", default=None,
                        help="tiles per side of a task's block; several are measured side by side [default: the scan's]")
    parser.add_argument("--without-bands-too", action="store_true",
                        help="also measure each scan with blocks handed out in turn (no worker bands), side by side")
    parser.add_argument("--http", action="store_true",
                        help="also measure the bytes a two-worker scan of the largest region fetches over HTTP, with "
                             "and without worker bands")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    bundle = args.out / "bench.safetensors"
    if not bundle.exists():
        train = generate_scene(args.out / "train", seed=11, size=512).path
        config = TrainConfig.from_mapping({"steps": 10, "num_threads": 2, "validation": {"tile": 256}},
                                          "demo")
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
            models.append(model_only(scene, bundle, args.tile_size))
            for v in variants:
                one[v].append(end_to_end(scene, bundle, args.out / f"run-{name}-1-{i}", 1, args.tile_size, *v))
                two[v].append(end_to_end(scene, bundle, args.out / f"run-{name}-2-{i}", 2, args.tile_size, *v))
        model = statistics.median(models)
        for v in variants:
            t1, t2 = statistics.median(r[0] for r in one[v]), statistics.median(r[0] for r in two[v])
            p1, p2 = statistics.median(r[1] for r in one[v]), statistics.median(r[1] for r in two[v])
            label = f"{v[0] or 'default'}{'' if v[1] else ', in turn'}"
            rows.append((name, label, mpx, mpx / model, mpx / t1, mpx / p1, model / p1, mpx / t2, mpx / p2, p1 / p2,
                         max(r[2] for r in one[v]) / 2**20, max(r[2] for r in two[v]) / 2**20, one[v][0][3]))
        print(f"{name}: done", flush=True)
    print("| area | block | Mpx | model-only Mpx/s | scan 1w Mpx/s (all) | scan 1w Mpx/s (tiles) | tiles 1w / model | "
          "scan 2w Mpx/s (all) | scan 2w Mpx/s (tiles) | 2w/1w (tiles) | peak MiB 1w | peak MiB 2w | tiles |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| {} | {} | {:.1f} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {:.0f} | {:.0f} | {} |"
              .format(*row))
    print("km2/s at 10 m = Mpx/s x 100")
    if args.http:
        scene = args.out / f"scene-{args.sizes[-1]}"
        whole = sum(p.stat().st_size for p in scene.glob("*.tif"))
        fetched: dict[bool, list[tuple[int, float]]] = {True: [], False: []}
        for i in range(args.repeats):
            for bands in (True, False):
                fetched[bands].append(http_bytes(scene, bundle, args.out / f"run-http-{bands}-{i}", bands))
        for bands, runs in fetched.items():
            print(f"over HTTP, {'worker bands' if bands else 'blocks in turn'}: "
                  f"{statistics.median(r[0] for r in runs) / 2**20:.1f} MiB fetched of {whole / 2**20:.1f} MiB in the "
                  f"band files; tile phase {statistics.median(r[1] for r in runs):.2f} s (median of {len(runs)})")
    ten = args.out / "scene-10mpx"
    if not (ten / "scene.json").exists():
        generate_scene(ten, seed=41, size=3200)
    tiles, tasks, peak = graph_size(ten, bundle, args.out / "run-10mpx")
    print(f"10.24 Mpx scene: {tiles} tiles in {tasks} tasks; at most {peak} tasks held by the scheduler at once")


if __name__ == "__main__":
    main()
