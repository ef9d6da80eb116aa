"""Benchmark the maps: restricted (encrypted) map of 5,000 detections + 21,941 kiln sector sites, and a
shared map.

Figures: build time, file size, time to first render in headless Chromium (passphrase typed -> map drawn,
median of 3). Targets: build < 15 s, file < 15 MB, interactive < 5 s. Also writes the README screenshots
``docs/img/map-restricted.png`` and ``docs/img/map-shared.png`` from a small demo-like run.

    .venv/bin/python benchmarks/bench_maps.py [--out benchmarks/out] [--no-screenshots]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd

from fieldtruth.maps.leads import build_leads_map
from fieldtruth.review.ledger import Ledger
from fieldtruth.tests.data.browser import CHROMIUM, CHROMIUM_ARGS
from fieldtruth.tests.data.shared import data_folder_or_exit, shared_data_root
from fieldtruth.tests.maps.test_leads_fixture import make_map_run

PASS = "benchmark passphrase"


def kilns() -> gpd.GeoDataFrame:
    folder = data_folder_or_exit(shared_data_root() / "kilneye")
    frames = [pd.read_csv(p) for p in sorted(folder.glob("*.csv"))]
    table = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(
        table[["kiln_type", "state"]],
        geometry=gpd.points_from_xy(table["lon"], table["lat"]),
        crs="EPSG:4326",
    )


def first_render(browser, path: Path, passphrase: str | None) -> float:  # noqa: ANN001
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort())
    started = time.perf_counter()
    page.goto(path.as_uri(), wait_until="load")
    if passphrase:
        page.fill("#ft-pass", passphrase)
        page.click("#ft-unlock button")
    page.wait_for_selector("body[data-ft-ready]", timeout=60_000)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => r(1)))")
    seconds = time.perf_counter() - started
    page.close()
    return seconds


def screenshots(browser, root: Path, docs: Path) -> None:  # noqa: ANN001
    from PIL import Image

    run = make_map_run(root / "demo" / "run", n=40, seed=3)
    with Ledger.open(run.path / "review.sqlite") as ledger:
        ledger.register_sites(run.path / "detections.parquet")
        for site, decision in (
            ("site-0001", "confirmed"),
            ("site-0004", "rejected"),
            ("site-0007", "field_visit"),
        ):
            ledger.decide(site, decision, "imagery", "rv01")
    docs.mkdir(parents=True, exist_ok=True)
    for tier in ("restricted", "shared"):
        out = build_leads_map(run.path, tier=tier, passphrase=PASS)
        page = browser.new_page(viewport={"width": 1100, "height": 720})
        page.route(
            "**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort()
        )
        page.goto(out.as_uri(), wait_until="load")
        if tier == "restricted":
            page.fill("#ft-pass", PASS)
            page.click("#ft-unlock button")
        page.wait_for_selector("body[data-ft-ready]")
        if tier == "restricted":
            page.locator("path.ft-status-confirmed").first.click(force=True)
            page.wait_for_timeout(500)
        target = docs / f"map-{tier}.png"
        page.screenshot(path=str(target))
        page.close()
        Image.open(target).convert("RGB").quantize(128).save(target, optimize=True)
        print(f"screenshot {target}: {target.stat().st_size / 1024:.0f} KiB")  # noqa: T201 - a script


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--no-screenshots", action="store_true")
    args = parser.parse_args()
    run = make_map_run(args.out.resolve() / "bench" / "run", n=5000, seed=7)
    sectors = kilns()
    sectors.to_parquet(run.path / "sectors.parquet")
    figures: dict[str, dict[str, float]] = {}
    paths = {}
    for tier in ("restricted", "shared"):
        started = time.perf_counter()
        paths[tier] = build_leads_map(run.path, tier=tier, passphrase=PASS)
        figures[tier] = {
            "build_s": round(time.perf_counter() - started, 2),
            "file_mb": round(paths[tier].stat().st_size / 1e6, 2),
        }
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        for tier in ("restricted", "shared"):
            times = [
                first_render(browser, paths[tier], PASS if tier == "restricted" else None) for _ in range(3)
            ]
            figures[tier]["render_s_median_of_3"] = round(statistics.median(times), 2)
        if not args.no_screenshots:
            screenshots(browser, args.out.resolve(), Path("docs/img"))
        browser.close()
    figures["inputs"] = {"detections": 5000, "sector_sites": len(sectors), "cpu_count": os.cpu_count() or 0}
    print(json.dumps(figures, indent=2))  # noqa: T201 - a script
    return 0


if __name__ == "__main__":
    sys.exit(main())
