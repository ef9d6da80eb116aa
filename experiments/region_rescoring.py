"""Experiment: can a region's decisions re-score the leads a scan found, where fine-tuning did not?

The review-loop benchmark's protocol (``benchmarks/bench_review_loop.py``: each port of a fold bundle's
test ports split into halves A and B, the first K leads of A in score order decided by the labels as
oracle, B measured), with three questions instead of a fine-tune:

- **ceilings** on B: pooled F1 with the best threshold for each B half (chosen on its labels), with every
  false lead at the bundle's threshold removed, and with every false candidate >= 0.05 removed (a perfect
  re-ranking of what the scan found);
- **verifier**: a logistic regression per port on the K decisions, over features of the pixels around
  each lead (centre, near ring and far ring reflectance per band, their contrasts, the water share of the
  ring by NDWI, texture), ridge-penalised; its ranking of B's leads (AUC) against the bundle's score, and
  the two summed (``score logit + alpha * verifier``);
- **adabn**: batch-norm statistics re-estimated on the whole port's tiles (no labels), B measured again.

Usage::

    .venv/bin/python experiments/region_rescoring.py FOLDS [--adabn]

``FOLDS`` holds ``fold0..2.safetensors`` and ``crossval.json`` as ``bench_detectors.py`` writes them.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
from pathlib import Path

import numpy as np
import torch

from fieldtruth.benchmarks.bench_review_loop import (
    FOLDS,
    TOLERANCE_PX,
    ceilings,
    decide,
    half,
    labels_inside,
)
from fieldtruth.detectors.bundle import load_bundle
from fieldtruth.detectors.evaluate import score_detections
from fieldtruth.detectors.predict import PixelDetection, detect_array, normalise
from fieldtruth.detectors.scangrid import detect_like_a_scan, grid_transform, labels_on_grid, scan_grid
from fieldtruth.detectors.sceneoffset import prepare_scenes
from fieldtruth.imagery.read import read_block
from fieldtruth.ingest.scene import open_scene
from fieldtruth.tests.data.shared import data_folder_or_exit, shared_data_root

PATCH_RADIUS = 15
K = 30


def chips(bundle, scene, grid):  # noqa: ANN001, ANN201
    """(tile, chip) over ``grid`` read in its default blocks, as a scan reads them."""
    for block in grid.blocks(grid.default_block()):
        yield from zip(block.tiles, read_block([scene], block, tuple(bundle.card.bands)), strict=True)


def leads_with_patches(bundle, scene, grid) -> tuple[list[PixelDetection], np.ndarray]:  # noqa: ANN001
    """Every candidate >= 0.05 on ``grid`` as a scan finds it, best first, with the raw bands around it."""
    to_pixel, r = ~grid_transform(grid), PATCH_RADIUS
    found, patches = [], []
    for tile, chip in chips(bundle, scene, grid):
        if chip.core_valid_fraction(tile.halo_px) == 0:
            continue
        padded = np.pad(chip.data, ((0, 0), (r, r), (r, r)), mode="reflect")
        for d in detect_array(bundle, chip.data, chip.valid, threshold=0.05):
            x, y = chip.transform * (d.col, d.row)
            if tile.in_core(x, y):
                col, row = to_pixel * (x, y)
                found.append(PixelDetection(row, col, d.score, d.label))
                i, j = round(d.row), round(d.col)
                patches.append(padded[:, i:i + 2 * r + 1, j:j + 2 * r + 1])
    order = np.argsort([-d.score for d in found], kind="stable")
    return [found[i] for i in order], np.stack([patches[i] for i in order])


def features(patches: np.ndarray) -> np.ndarray:
    """Per lead: centre, near and far ring (log reflectance) per band, two contrasts, water share, texture."""
    p = np.log1p(np.clip(patches, 0, None) / 1000.0)
    c = PATCH_RADIUS
    yy, xx = np.mgrid[: 2 * c + 1, : 2 * c + 1]
    radius = np.hypot(yy - c, xx - c)
    centre = p[:, :, radius <= 1.5].mean(-1)
    near = np.median(p[:, :, (radius >= 3) & (radius <= 6)], -1)
    far = np.median(p[:, :, (radius >= 6) & (radius <= c)], -1)
    green, nir = patches[:, 1].astype(float), patches[:, 3].astype(float)
    water = ((green - nir) / np.maximum(green + nir, 1))[:, (radius >= 4) & (radius <= c)] > 0
    return np.column_stack([centre, far, centre - far, centre - near, water.mean(-1), p.std((-2, -1))])


def ridge_logistic(x: np.ndarray, y: np.ndarray, penalty: float = 1.0) -> np.ndarray:
    """Weights (last: intercept) of a logistic regression with an L2 penalty on the weights."""
    xt, yt = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    w = torch.zeros(x.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=200)

    def loss() -> torch.Tensor:
        opt.zero_grad()
        value = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w[:-1] + w[-1], yt)
        value = value + penalty * (w[:-1] ** 2).sum()
        value.backward()
        return value

    opt.step(loss)
    return w.detach().numpy()


def auc(score: np.ndarray, truth: np.ndarray) -> float:
    if truth.all() or not truth.any():
        return float("nan")
    pos, neg = score[truth][:, None], score[~truth][None]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


def f1(counts: list[tuple[int, int, int]]) -> float:
    tp, fp, fn = np.sum(counts, 0)
    return 2 * tp / max(2 * tp + fp + fn, 1)


def adapted_batch_norm(bundle, scene, grid):  # noqa: ANN001, ANN201
    """The bundle with its batch-norm statistics re-estimated on the tiles of ``grid`` (no labels)."""
    model = copy.deepcopy(bundle.model)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a plain average over the tiles
    model.train()
    with torch.no_grad():
        for _, chip in chips(bundle, scene, grid):
            if chip.valid.mean() >= 0.5:
                model(normalise(bundle.card, chip.data, chip.valid))
    return dataclasses.replace(bundle, model=model.eval(), runner=None, precision="float32")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folds", type=Path)
    parser.add_argument("--adabn", action="store_true", help="also re-estimate batch norm on each port")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data_folder_or_exit(shared_data_root() / "sen2ships")
    counts = {k: [] for k in ("before", "threshold", "filter", "rerank", "adabn")}
    aucs = []
    for fold, ports in FOLDS.items():
        bundle = load_bundle(args.folds / f"fold{fold}.safetensors")
        t = bundle.card.threshold
        for port in ports:
            folder = shared_data_root() / "sen2ships" / port
            raw = open_scene(folder)
            scene = prepare_scenes([raw], bundle.card.bands, bundle.card.scene_offset)[0]
            grid = scan_grid(bundle, raw)
            (found_a, patches_a), (found_b, patches_b) = (leads_with_patches(bundle, scene, half(grid, s))
                                                          for s in "AB")
            labels_a, labels_b = (labels_inside(half(grid, s), labels_on_grid(folder, raw, half(grid, s)))
                                  for s in "AB")
            truth_b = np.array(decide(found_b, labels_b))
            every = score_detections(found_b, labels_b, tolerance_px=TOLERANCE_PX)
            kept = every.at_threshold(t)
            counts["before"].append((kept.tp, kept.fp, kept.fn))
            ceiling = ceilings(every, kept)
            for key, name in (("threshold", "ceiling_threshold"), ("filter", "ceiling_filter")):
                counts[key].append(tuple(ceiling[name][k] for k in ("tp", "fp", "fn")))
            found_vessels = sum(hit for _, hit in every.ranked)  # one-to-one: a vessel counts once
            counts["rerank"].append((found_vessels, 0, every.n_labels - found_vessels))
            decided = [i for i, d in enumerate(found_a) if d.score >= t][:K]
            truth_a = np.array(decide([found_a[i] for i in decided], labels_a))
            scores_b = np.array([d.score for d in found_b])
            on_b = scores_b >= t
            line = f"{port:<11} K {len(decided):>2} ({truth_a.sum()} confirmed)  F1 on B {kept.f1:.3f}"
            if min(truth_a.sum(), (~truth_a).sum()) >= 2 and 0 < truth_b[on_b].sum() < on_b.sum():
                xa, xb = features(patches_a[decided]), features(patches_b[on_b])
                mean, std = xa.mean(0), xa.std(0) + 1e-6
                w = ridge_logistic((xa - mean) / std, truth_a.astype(float))
                verifier = ((xb - mean) / std) @ w[:-1]
                logit = np.log(scores_b[on_b] / (1 - scores_b[on_b]))
                aucs.append([auc(logit + a * verifier, truth_b[on_b]) for a in (0.0, 0.25, 0.5, 1.0)]
                            + [auc(verifier, truth_b[on_b])])
                line += "  AUC of B's leads: score {:.2f}, +0.25/0.5/1 x verifier {:.2f}/{:.2f}/{:.2f}, " \
                        "verifier alone {:.2f}".format(*aucs[-1])
            if args.adabn:
                adapted = adapted_batch_norm(bundle, scene, grid)
                after = score_detections(detect_like_a_scan(adapted, scene, half(grid, "B"), threshold=0.05),
                                         labels_b, tolerance_px=TOLERANCE_PX)
                at_t = after.at_threshold(t)
                counts["adabn"].append((at_t.tp, at_t.fp, at_t.fn))
                line += (f"  adabn: F1 {at_t.f1:.3f}, AP {every.average_precision:.3f} -> "
                         f"{after.average_precision:.3f}")
            print(line, flush=True)
    print("pooled F1 on the B halves: " + ", ".join(f"{k} {f1(v):.3f}" for k, v in counts.items() if v))
    print("mean AUC over {} ports: score {:.3f}, +0.25/0.5/1 x verifier {:.3f}/{:.3f}/{:.3f}, verifier alone "
          "{:.3f}".format(len(aucs), *np.nanmean(np.array(aucs), 0)))


if __name__ == "__main__":
    main()
