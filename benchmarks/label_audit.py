"""A blind look at every detection a cross-validation keeps on its held-out ports: which of its false
positives are vessels the labels leave out, and how well the eye judging them does on the labelled ones.

Step 1 (``sheets``): every detection at or above its fold's threshold on the held-out ports (as
``benchmarks/inspect_errors.py`` detects them: the scan's grid, the fold bundle) is cut out (48 px,
natural colour, a red ring at the detection, no label boxes, no score, no port) and the cuts are
shuffled (seeded) onto numbered sheets ``RUN/audit/sheet-<k>.png``. ``RUN/audit/detections.csv`` holds,
per cut number, the port, fold, score, pixel position and whether the labels count it a true positive
(``labels.json``: the labels per port); keep the CSV closed while judging. The sheets show real imagery: keep them out of the repository.

Step 2, by eye: write ``RUN/audit/verdicts.csv`` with the header ``cut,verdict`` and one row per cut,
verdict ``vessel`` (a compact bright object on water, a boat or ship), ``unsure``, or ``not`` (land,
pier, a streak, nothing visible).

Step 3 (``score``): the verdicts on labelled true positives say how often the eye calls a real ship a
vessel; on false positives, how many look like vessels the labels leave out. It prints the pooled
precision and F1 if those were counted as vessels (an upper estimate: unlabelled boats the detector
missed would add to the misses, which no one has counted), and the verdicts of the detections in open
water (NDWI > 0, before any offset, on 90 % of the 15 x 15 px around them). Usage::

    .venv/bin/python benchmarks/label_audit.py sheets benchmarks/out/detectors-v4/offset
    .venv/bin/python benchmarks/label_audit.py score benchmarks/out/detectors-v4/offset
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
from inspect_errors import DATA, _natural_colour
from PIL import Image, ImageDraw

from fieldtruth.detectors.bundle import load_bundle
from fieldtruth.detectors.data import open_water_around
from fieldtruth.detectors.evaluate import LabelShape, ScoredPoint, match_points
from fieldtruth.detectors.scangrid import detect_like_a_scan, labels_on_grid, scan_grid
from fieldtruth.detectors.sceneoffset import prepare_scenes
from fieldtruth.imagery.read import read_mosaic
from fieldtruth.ingest.scene import open_scene

CUT, ZOOM, ACROSS, DOWN = 48, 3, 8, 6
VERDICTS = ("vessel", "unsure", "not")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("sheets", "score"))
    parser.add_argument("run", type=Path, help="a bench_detectors.py output folder")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    audit = args.run / "audit"
    audit.mkdir(exist_ok=True)
    if args.step == "sheets":
        write_sheets(args.run, args.data, audit, args.seed)
    else:
        score(audit)


def write_sheets(run: Path, data: Path, audit: Path, seed: int) -> None:
    rows, cuts, labels_per_port = [], [], {}
    for i, fold in enumerate(json.loads((run / "crossval.json").read_text())["folds"]):
        bundle = load_bundle(run / f"fold{i}.safetensors")
        for port in fold["test"]:
            folder = data / port.removeprefix("sen2ships-")
            raw = open_scene(folder, hash_files=False)
            scene = prepare_scenes([raw], bundle.card.bands, bundle.card.scene_offset)[0]
            grid = scan_grid(bundle, scene)
            open_water = _open_water(raw, grid)
            kept = sorted(detect_like_a_scan(bundle, scene, grid, threshold=bundle.card.threshold), key=lambda d: -d.score)
            labels = labels_on_grid(folder, scene, grid)
            labels_per_port[folder.name] = len(labels)
            matched = match_points([ScoredPoint(d.col, d.row, d.score, d.label) for d in kept],
                                   [LabelShape(lab.geometry, lab.label) for lab in labels], tolerance=1.0)
            image = _natural_colour(scene, grid, bundle.card.bands)
            for d, (_, true) in zip(kept, matched.ranked, strict=True):
                rows.append({"port": folder.name, "fold": i, "score": round(d.score, 4), "col": round(d.col, 1),
                             "row": round(d.row, 1), "labelled": int(true),
                             "open_water": int(open_water[int(d.row), int(d.col)])})
                cuts.append(_blind_cut(image, d))
    (audit / "labels.json").write_text(json.dumps(labels_per_port, indent=1))
    order = np.random.default_rng(seed).permutation(len(rows))
    with (audit / "detections.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, ["cut", *rows[0]])
        writer.writeheader()
        for number, k in enumerate(order):
            writer.writerow({"cut": number, **rows[k]})
    per_sheet = ACROSS * DOWN
    for first in range(0, len(order), per_sheet):
        _sheet([(number, cuts[k]) for number, k in enumerate(order) if first <= number < first + per_sheet]).save(
            audit / f"sheet-{first // per_sheet}.png")
    print(f"{len(rows)} detections on {-(-len(rows) // per_sheet)} sheets -> {audit}")


def _open_water(raw_scene, grid) -> np.ndarray:
    """Open water (see :func:`open_water_around`) from NDWI > 0 before any offset, on the scan's grid."""
    whole = dataclasses.replace(grid, tile_size=max(grid.shape) * grid.tile_size, halo=0)
    chip = read_mosaic([raw_scene], whole.tile(0, 0), ("green", "nir"))
    return open_water_around((chip.data[0] > chip.data[1]) & chip.valid)


def _blind_cut(image: np.ndarray, detection) -> Image.Image:
    row, col = int(detection.row) - CUT // 2, int(detection.col) - CUT // 2
    cut = np.zeros((CUT, CUT, 3))
    part = image[max(row, 0) : row + CUT, max(col, 0) : col + CUT]
    cut[max(-row, 0) : max(-row, 0) + part.shape[0], max(-col, 0) : max(-col, 0) + part.shape[1]] = part
    return Image.fromarray((cut * 255).astype(np.uint8)).resize((CUT * ZOOM, CUT * ZOOM), Image.NEAREST)


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
        counts = {v: sum(1 for n, r in detections.items() if int(r["labelled"]) == labelled
                         and int(r["open_water"]) and verdicts[n] == v) for v in VERDICTS}
        print(f"  {name}: {counts} of {sum(table[(labelled, v)] for v in VERDICTS)}")


if __name__ == "__main__":
    main()
