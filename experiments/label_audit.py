"""A blind look at every detection a cross-validation keeps on its held-out ports: which of its false
positives are vessels the labels leave out, and how well the eye judging them does on the labelled ones.

Step 1 (``sheets``): every detection at or above its fold's threshold on the held-out ports (as
``inspect_errors.py`` detects them: the scan's grid, the fold bundle) is cut out (48 px,
natural colour, a red ring at the detection, no label boxes, no score, no port) and the cuts are
shuffled (seeded) onto numbered sheets ``RUN/audit/sheet-<k>.png``. ``RUN/audit/detections.csv`` holds,
per cut number, the port, fold, score, pixel position and whether the labels count it a true positive
(``labels.json``: the labels per port); keep the CSV closed while judging. The sheets show real imagery:
keep them out of the repository.

Step 2, by eye: write ``RUN/audit/verdicts.csv`` with the header ``cut,verdict`` and one row per cut,
verdict ``vessel`` (a compact bright object on water, a boat or ship), ``unsure``, or ``not`` (land,
pier, a streak, nothing visible).

Step 3 (``score``): the verdicts on labelled true positives say how often the eye calls a real ship a
vessel; on false positives, how many look like vessels the labels leave out. It prints the pooled
precision and F1 if those were counted as vessels (an upper estimate: unlabelled boats the detector
missed would add to the misses, which no one has counted), and the verdicts of the detections in open
water (NDWI > 0, before any offset, on 90 % of the 15 x 15 px around them). Usage::

    .venv/bin/python experiments/label_audit.py sheets benchmarks/out/detectors-v4/offset
    .venv/bin/python experiments/label_audit.py score benchmarks/out/detectors-v4/offset
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import uniform_filter

from fieldtruth.detectors.scangrid import detect_like_a_scan
from fieldtruth.experiments.heldout import SEN2SHIPS, crop, held_out_ports, natural_colour, ranked_truth
from fieldtruth.imagery.read import read_mosaic
from fieldtruth.tests.data.shared import data_folder_or_exit

CUT, ZOOM, ACROSS, DOWN = 48, 3, 8, 6
VERDICTS = ("vessel", "unsure", "not")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("sheets", "score"))
    parser.add_argument("run", type=Path, help="a bench_detectors.py output folder")
    parser.add_argument("--data", type=Path, default=SEN2SHIPS, help="the sen2ships ports")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    audit = args.run / "audit"
    audit.mkdir(exist_ok=True)
    if args.step == "sheets":
        write_sheets(args.run, data_folder_or_exit(args.data), audit, args.seed)
    else:
        score(audit)


def write_sheets(run: Path, data: Path, audit: Path, seed: int) -> None:
    rows, cuts, labels_per_port = [], [], {}
    for port in held_out_ports(run, data):
        bundle = port.bundle
        open_water = _open_water(port.raw, port.grid)
        kept = detect_like_a_scan(bundle, port.scene, port.grid, threshold=bundle.card.threshold)
        labels_per_port[port.folder.name] = len(port.labels)
        image = natural_colour(port.scene, port.grid, bundle.card.bands)
        for d, true in ranked_truth(kept, port.labels):
            rows.append(
                {
                    "port": port.folder.name,
                    "fold": port.fold,
                    "score": round(d.score, 4),
                    "col": round(d.col, 1),
                    "row": round(d.row, 1),
                    "labelled": int(true),
                    "open_water": int(open_water[int(d.row), int(d.col)]),
                }
            )
            cuts.append(crop(image, d, CUT))
    (audit / "labels.json").write_text(json.dumps(labels_per_port, indent=1))
    order = np.random.default_rng(seed).permutation(len(rows))
    with (audit / "detections.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, ["cut", *rows[0]])
        writer.writeheader()
        for number, k in enumerate(order):
            writer.writerow({"cut": number, **rows[k]})
    per_sheet = ACROSS * DOWN
    for first in range(0, len(order), per_sheet):
        _sheet(
            [(number, cuts[k]) for number, k in enumerate(order) if first <= number < first + per_sheet]
        ).save(audit / f"sheet-{first // per_sheet}.png")
    print(f"{len(rows)} detections on {-(-len(rows) // per_sheet)} sheets -> {audit}")


def _open_water(raw_scene, grid) -> np.ndarray:
    """Open water from NDWI > 0 before any offset, on the scan's grid: pixels with water on at least 90 % of
    the 15 x 15 px around them (away from quays, piers and shores)."""
    whole = dataclasses.replace(grid, tile_size=max(grid.shape) * grid.tile_size, halo=0)
    chip = read_mosaic([raw_scene], whole.tile(0, 0), ("green", "nir"))
    water = (chip.data[0] > chip.data[1]) & chip.valid
    return uniform_filter(water.astype(np.float32), 15, mode="constant") >= 0.9


def _sheet(numbered: list[tuple[int, Image.Image]]) -> Image.Image:
    side = CUT * ZOOM
    sheet = Image.new("RGB", (side * ACROSS, side * DOWN))
    for k, (number, cut) in enumerate(numbered):
        cut = cut.copy()
        draw = ImageDraw.Draw(cut)
        middle, ring = side // 2, 3 * ZOOM
        draw.ellipse([middle - ring, middle - ring, middle + ring, middle + ring], outline=(255, 0, 0))
        draw.text((3, 3), str(number), fill=(255, 255, 0))
        sheet.paste(cut, ((k % ACROSS) * side, (k // ACROSS) * side))
    return sheet


def score(audit: Path) -> None:
    detections = {int(r["cut"]): r for r in csv.DictReader((audit / "detections.csv").open())}
    verdicts = {int(r["cut"]): r["verdict"].strip() for r in csv.DictReader((audit / "verdicts.csv").open())}
    missing = sorted(set(detections) - set(verdicts))
    wrong = sorted({v for v in verdicts.values()} - set(VERDICTS))
    if missing or wrong:
        raise SystemExit(f"verdicts.csv: no verdict for cuts {missing[:10]}...; unknown verdicts {wrong}")
    table = {(labelled, v): 0 for labelled in (1, 0) for v in VERDICTS}
    for number, row in detections.items():
        table[(int(row["labelled"]), verdicts[number])] += 1
    n_labels = sum(json.loads((audit / "labels.json").read_text()).values())
    tp = sum(table[(1, v)] for v in VERDICTS)
    fp = sum(table[(0, v)] for v in VERDICTS)
    print("| detections | " + " | ".join(VERDICTS) + " |\n|---|---|---|---|")
    for labelled, name in ((1, "labelled (true positives)"), (0, "not labelled (false positives)")):
        print(f"| {name} | " + " | ".join(str(table[(labelled, v)]) for v in VERDICTS) + " |")

    def figures(extra: int) -> str:
        p, r = (tp + extra) / (tp + fp), (tp + extra) / (n_labels + extra)
        return f"P {p:.2f} R {r:.2f} F1 {2 * p * r / (p + r):.2f}"

    print(f"\n{n_labels} labels, {tp + fp} detections kept. As labelled: {figures(0)}")
    print(f"false positives judged vessels counted as vessels: {figures(table[(0, 'vessel')])}")
    print(f"... and the unsure ones too: {figures(table[(0, 'vessel')] + table[(0, 'unsure')])}")
    print("\nIn open water (NDWI > 0 on 90 % of the 15 x 15 px around):")
    for labelled, name in ((1, "labelled"), (0, "not labelled")):
        counts = {
            v: sum(
                1
                for n, r in detections.items()
                if int(r["labelled"]) == labelled and int(r["open_water"]) and verdicts[n] == v
            )
            for v in VERDICTS
        }
        print(f"  {name}: {counts} of {sum(table[(labelled, v)] for v in VERDICTS)}")


if __name__ == "__main__":
    main()
