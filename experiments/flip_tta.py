"""Experiment: does averaging the heatmap over flipped copies of each tile (test-time augmentation) help?

Measured on the validation port of each fold of a ``bench_detectors.py`` run (``RUN/fold<i>.safetensors``,
``RUN/crossval.json``), native pixels as the cards' validation figures are: F1 at the card's threshold,
AP, and the best F1 over thresholds, with and without the flips (identity, left-right, up-down, both;
probabilities and box sizes averaged). Held-out ports are not read. Usage::

    .venv/bin/python experiments/flip_tta.py benchmarks/out/detectors-v4/offset
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import fieldtruth.detectors.predict as predict
from fieldtruth.detectors.bundle import LoadedBundle, load_bundle
from fieldtruth.detectors.evaluate import merge_scores
from fieldtruth.detectors.model import output_stride
from fieldtruth.detectors.report import evaluate_scenes, figures_at
from fieldtruth.experiments.heldout import SEN2SHIPS
from fieldtruth.tests.data.shared import data_folder_or_exit

FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


@torch.no_grad()
def flipped_heads(
    bundle: LoadedBundle, data: np.ndarray, valid: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`fieldtruth.detectors.predict.heads`, averaged over the flips (the chip padded to whole cells,
    so a flipped output cell covers the same pixels)."""
    x = predict.normalise(bundle.card, data, valid)
    stride = output_stride(bundle.model)
    h, w = x.shape[-2:]
    x = F.pad(x, (0, -w % stride, 0, -h % stride))
    heats, sizes = [], []
    for dims in FLIPS:
        out = bundle.model(x.flip(dims) if dims else x)
        heat = torch.sigmoid(out.heatmap[0])
        heats.append(heat.flip(dims) if dims else heat)
        if out.size is not None:
            size = torch.exp(out.size[0].clamp(max=6.0))
            sizes.append(size.flip(dims) if dims else size)
    rows, cols = -(-h // stride), -(-w // stride)
    return (
        torch.stack(heats).mean(0)[:, :rows, :cols],
        torch.stack(sizes).mean(0)[:, :rows, :cols] if sizes else None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a bench_detectors.py output folder")
    parser.add_argument("--data", type=Path, default=SEN2SHIPS, help="the sen2ships ports")
    args = parser.parse_args()
    data_folder_or_exit(args.data)
    plain = predict.heads
    for i, fold in enumerate(json.loads((args.run / "crossval.json").read_text())["folds"]):
        bundle = load_bundle(args.run / f"fold{i}.safetensors")
        ports = [args.data / p.removeprefix("sen2ships-") for p in fold["validation"]]
        for name, heads in (("plain", plain), ("flips", flipped_heads)):
            predict.heads = heads
            scores = merge_scores([r.scores for r in evaluate_scenes(bundle, ports, grid="native")])
            at = figures_at(scores, bundle.card.threshold)
            best_threshold, best = scores.best_threshold()
            print(
                f"fold {i} {'+'.join(fold['validation'])} {name}: F1 {at.f1:.2f} AP {at.ap:.2f} "
                f"(best F1 {best.f1:.2f} at {best_threshold:.3f})"
            )
    predict.heads = plain


if __name__ == "__main__":
    main()
