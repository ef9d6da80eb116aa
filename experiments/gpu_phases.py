"""Where a GPU scan's time goes (issue 21): reading the chips with 1 and with many threads, then, chips in
memory, normalising and copying, the forward pass and the peak search, each timed with the device
synchronised (the second of two passes; the first warms up).

Run on a scene folder the scan benchmark built (``bench_scan.py --port busan --copies 10`` writes
``busan-x10``) and a bundle::

    python3 experiments/gpu_phases.py benchmarks/out/busan-x10 fold0.safetensors [--device cpu]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from fieldtruth.detectors import predict
from fieldtruth.detectors.bundle import load_bundle
from fieldtruth.detectors.model import output_stride
from fieldtruth.detectors.scangrid import scan_grid
from fieldtruth.detectors.sceneoffset import prepare_scenes
from fieldtruth.imagery import handles
from fieldtruth.imagery.chip import Chip
from fieldtruth.imagery.read import read_chip
from fieldtruth.ingest.scene import open_scene
from fieldtruth.pipelines.tilework import available_cores

#: (precision, tile core, cudnn.benchmark settings) measured, in order.
CASES = (("float32", 1024, (False, True)), ("bfloat16", 1024, (True,)), ("float32", 2048, (True,)))


def read_all(scene: object, tiles: list, bands: tuple[str, ...], threads: int) -> tuple[list[Chip], float]:
    """Every tile's chip, read by ``threads`` threads from freshly opened files; and the seconds it took."""
    handles.close_all()
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        chips = list(pool.map(lambda tile: read_chip(scene, tile, bands), tiles))
    return chips, time.perf_counter() - started


def phases(bundle: object, chips: list[Chip], device: torch.device) -> tuple[float, float, float]:
    """Seconds normalising and copying, in the forward pass and finding peaks, over every chip."""
    sync: Callable[[], None] = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    stride, card = output_stride(bundle.network), bundle.card
    spent = [0.0, 0.0, 0.0]
    for chip in chips:
        sync()
        t0 = time.perf_counter()
        x = predict.normalise(card, chip.data, chip.valid, device)
        sync()
        t1 = time.perf_counter()
        heat, sizes = predict.forward_on_device(bundle, x)
        sync()
        t2 = time.perf_counter()
        predict._decode(card, stride, heat, sizes, [chip.valid], card.threshold)
        t3 = time.perf_counter()
        for i, seconds in enumerate((t1 - t0, t2 - t1, t3 - t2)):
            spent[i] += seconds
    return spent[0], spent[1], spent[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scene", type=Path)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    args = parser.parse_args()
    device = torch.device(args.device)
    readers = max(1, available_cores() - 1)
    for precision, size, benchmark_options in CASES:
        bundle = load_bundle(args.bundle, device=device, precision=precision)
        scene = prepare_scenes([open_scene(args.scene)], bundle.card.bands, bundle.card.scene_offset)[0]
        tiles, bands = list(scan_grid(bundle, scene, tile_size=size)), tuple(bundle.card.bands)
        for threads in (readers, 1) if (precision, size) == CASES[0][:2] else (readers,):
            chips, seconds = read_all(scene, tiles, bands, threads)
            print(f"core {size}: {len(tiles)} chips read by {threads} thread(s) in {seconds:.2f} s",
                  flush=True)
        pixels = sum(chip.data.shape[1] * chip.data.shape[2] for chip in chips) / 1e6
        for benchmark in benchmark_options:
            torch.backends.cudnn.benchmark = benchmark
            phases(bundle, chips, device)  # warm-up
            normalising, forward, peaks = phases(bundle, chips, device)
            print(f"  {precision}, core {size}, cudnn.benchmark {benchmark}: {pixels:.1f} input Mpx; "
                  f"normalise and copy {normalising:.2f} s, forward {forward:.2f} s "
                  f"({pixels / forward:.1f} input Mpx/s), peaks {peaks:.2f} s", flush=True)


if __name__ == "__main__":
    main()
