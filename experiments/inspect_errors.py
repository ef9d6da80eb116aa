"""Look at a cross-validation's errors on its held-out ports: why labels were missed, and what the
highest-scoring false positives are (a contact sheet to judge by eye).

For each fold bundle of ``bench_detectors.py`` (``RUN/fold<i>.safetensors`` and ``RUN/crossval.json``), every
held-out port is detected on the scan's grid as ``fieldtruth evaluate`` does. A missed label is counted
as *scored low* (a detection inside its box, below the operating threshold), *beside* (none inside, one
above the threshold within 15 px: suppressed by a neighbour or placed off the hull) or *unseen*. The
``--per-port`` highest-scoring false positives of each port are cut out (64 px, natural colour, label
boxes green, the detection red) into ``RUN/false-positives.png``. The sheet shows real imagery: keep it
out of the repository. It also prints what the thresholds cost: the pooled F1 at the folds' thresholds,
at the one threshold best on the held-out ports themselves, and with each port at its own best (both
oracles, which no detector can choose; their gap to the first is all a better threshold could win). Usage::

    .venv/bin/python experiments/inspect_errors.py benchmarks/out/detectors-v4/offset [--per-port 4]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import shapely
from PIL import Image, ImageDraw

from fieldtruth.detectors.evaluate import Scores, merge_scores, score_detections
from fieldtruth.detectors.report import CURVE_FLOOR
from fieldtruth.detectors.scangrid import detect_like_a_scan
from fieldtruth.experiments.heldout import SEN2SHIPS, ZOOM, crop, held_out_ports, natural_colour, ranked_truth
from fieldtruth.tests.data.shared import data_folder_or_exit

CUT = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a bench_detectors.py output folder")
    parser.add_argument("--data", type=Path, default=SEN2SHIPS, help="the sen2ships ports")
    parser.add_argument("--per-port", type=int, default=4)
    args = parser.parse_args()
    missed = {"scored low": 0, "beside": 0, "unseen": 0}
    n_labels, cuts, scored = 0, [], []
    for port in held_out_ports(args.run, data_folder_or_exit(args.data)):
        bundle, labels = port.bundle, port.labels
        found = detect_like_a_scan(bundle, port.scene, port.grid, threshold=CURVE_FLOOR)
        n_labels += len(labels)
        scored.append((score_detections(found, labels, tolerance_px=1.0), bundle.card.threshold))
        for kind in _why_missed(found, labels, bundle.card.threshold):
            missed[kind] += 1
        kept = [d for d in found if d.score >= bundle.card.threshold]
        false = [d for d, true in ranked_truth(kept, labels) if not true]
        image = natural_colour(port.scene, port.grid, bundle.card.bands)
        cuts += [_cut(image, d, labels, f"{port.folder.name} {d.score:.2f}") for d in false[: args.per_port]]
    print(f"{sum(missed.values())} of {n_labels} labels missed: {missed}")
    _print_threshold_oracles(scored)
    _sheet(cuts).save(args.run / "false-positives.png")
    print(f"{len(cuts)} false positives -> {args.run / 'false-positives.png'}")


def _print_threshold_oracles(scored: list[tuple[Scores, float]]) -> None:
    def pooled_f1(parts: list) -> float:
        tp, fp, fn = (sum(getattr(x, k) for x in parts) for k in ("tp", "fp", "fn"))
        return 2 * tp / max(1, 2 * tp + fp + fn)

    at_folds = pooled_f1([scores.at_threshold(threshold) for scores, threshold in scored])
    best_threshold, best = merge_scores([scores for scores, _ in scored]).best_threshold()
    own = pooled_f1([scores.best_threshold()[1] for scores, _ in scored])
    print(f"pooled F1 at the folds' thresholds {at_folds:.3f}; at the one threshold best on these ports "
          f"({best_threshold:.3f}, an oracle) {best.f1:.3f}; each port at its own best (an oracle) {own:.3f}")


def _why_missed(found: list, labels: list, threshold: float) -> list[str]:
    points = [(shapely.Point(d.col, d.row), d.score) for d in found]
    kinds = []
    for label in labels:
        inside = max((s for p, s in points if label.geometry.buffer(1.0).contains(p)), default=0.0)
        if inside >= threshold:
            continue
        near = max((s for p, s in points if label.geometry.buffer(15.0).contains(p)), default=0.0)
        kinds.append("scored low" if inside > 0 else "beside" if near >= threshold else "unseen")
    return kinds


def _cut(image: np.ndarray, detection, labels: list, caption: str) -> Image.Image:
    row, col = int(detection.row) - CUT // 2, int(detection.col) - CUT // 2
    picture = crop(image, detection, CUT)
    draw = ImageDraw.Draw(picture)
    for label in labels:
        x0, y0, x1, y1 = label.geometry.bounds
        draw.rectangle(
            [(x0 - col) * ZOOM, (y0 - row) * ZOOM, (x1 - col) * ZOOM, (y1 - row) * ZOOM], outline=(0, 255, 0)
        )
    middle = CUT * ZOOM // 2
    draw.ellipse([middle - 5, middle - 5, middle + 5, middle + 5], outline=(255, 0, 0))
    draw.text((3, 3), caption, fill=(255, 255, 0))
    return picture


def _sheet(cuts: list[Image.Image], across: int = 6) -> Image.Image:
    side = CUT * ZOOM
    sheet = Image.new("RGB", (side * across, side * max(1, -(-len(cuts) // across))))
    for k, cut in enumerate(cuts):
        sheet.paste(cut, ((k % across) * side, (k // across) * side))
    return sheet


if __name__ == "__main__":
    main()
