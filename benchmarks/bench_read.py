"""Benchmark of tile reads: fieldtruth's ``read_chip`` against a plain rasterio loop over the same windows.

Run by hand (not in CI)::

    .venv/bin/python benchmarks/bench_read.py --repeats 5

For a synthetic region it reads every tile (512 px core, 32 px halo, four bands) from local COGs and
from the same COGs served over loopback HTTP with range requests, and compares with the loop a user
would write by hand (``rasterio.open`` per band, ``read(window=..., boundless=False)`` clipped to the
file). It also measures the peak resident memory while reading every tile of a region and of one
with 4x the area, each in a fresh process. Results print as Markdown.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import rasterio
from rasterio.windows import Window, from_bounds

from fieldtruth.imagery import handles
from fieldtruth.imagery.read import read_chip
from fieldtruth.imagery.synthetic import generate_scene
from fieldtruth.imagery.target import grid_for_scene
from fieldtruth.ingest.remote import gdal_http_env
from fieldtruth.ingest.scene import open_scene
from fieldtruth.ingest.stac import scene_from_item
from fieldtruth.tests.data.rangeserver import serve
from fieldtruth.tests.data.stac import item_for_folder


def fieldtruth_reads(scene, grid) -> int:  # noqa: ANN001
    handles.close_all()  # each pass starts cold, as a scan's worker does; neighbours reuse blocks within it
    pixels = 0
    for tile in grid:
        chip = read_chip(scene, tile)
        pixels += chip.valid.size
    return pixels


def plain_reads(hrefs: list[str], grid) -> int:  # noqa: ANN001
    pixels = 0
    for tile in grid:
        for href in hrefs:
            with rasterio.open(href) as ds:
                window = from_bounds(*tile.halo, transform=ds.transform).round_offsets().round_lengths()
                window = window.intersection(Window(0, 0, ds.width, ds.height))
                ds.read(1, window=window)
        pixels += tile.shape[0] * tile.shape[1]
    return pixels


def timed(fn, *args) -> tuple[float, int]:  # noqa: ANN001
    started = time.perf_counter()
    pixels = fn(*args)
    return time.perf_counter() - started, pixels


def throughput(scene_dir: Path, repeats: int) -> list[tuple[str, float, float]]:
    scene = open_scene(scene_dir)
    grid = grid_for_scene(scene, tile_size=512, halo=32)
    hrefs = [b.href for b in scene.bands.values()]
    rows = []
    local_ft = [timed(fieldtruth_reads, scene, grid) for _ in range(repeats)]
    local_plain = [timed(plain_reads, hrefs, grid) for _ in range(repeats)]
    rows.append(("local COG", _mpxs(local_ft), _mpxs(local_plain)))
    with serve(scene_dir) as (base, _log):
        remote = scene_from_item(
            item_for_folder(scene_dir, "bench", href_base=base), allow_hosts=["127.0.0.1"]
        )
        remote_hrefs = [b.href for b in remote.bands.values()]
        with gdal_http_env():
            http_ft = [timed(fieldtruth_reads, remote, grid) for _ in range(repeats)]
            http_plain = [timed(plain_reads, remote_hrefs, grid) for _ in range(repeats)]
    rows.append(("loopback HTTP", _mpxs(http_ft), _mpxs(http_plain)))
    return rows


def _mpxs(runs: list[tuple[float, int]]) -> float:
    return statistics.median(px * 4 / s / 1e6 for s, px in runs)  # four bands


PEAK_SCRIPT = """
import resource, sys
from fieldtruth.imagery.read import read_chip
from fieldtruth.imagery.target import grid_for_scene
from fieldtruth.ingest.scene import open_scene
scene = open_scene(sys.argv[1])
for tile in grid_for_scene(scene, tile_size=512, halo=32):
    read_chip(scene, tile)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_kib(scene_dir: Path) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(scene_dir)], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    small, large = args.out / "read-2048", args.out / "read-4096"
    for folder, size in ((small, 2048), (large, 4096)):
        if not (folder / "scene.json").exists():
            generate_scene(folder, seed=31, size=size)
    print("| source | fieldtruth Mpx/s | plain rasterio Mpx/s | ratio |")
    print("|---|---|---|---|")
    for name, ft, plain in throughput(small, args.repeats):
        print(f"| {name} | {ft:.1f} | {plain:.1f} | {ft / plain:.2f} |")
    peaks = {
        name: statistics.median(peak_kib(folder) for _ in range(3))
        for name, folder in (("1x", small), ("4x", large))
    }
    print(
        f"\npeak RSS reading every tile: 1x (2048^2) {peaks['1x'] / 1024:.0f} MiB, 4x (4096^2) "
        f"{peaks['4x'] / 1024:.0f} MiB, ratio {peaks['4x'] / peaks['1x']:.3f}"
    )


if __name__ == "__main__":
    main()
