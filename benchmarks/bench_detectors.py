"""Benchmark: leave-ports-out cross-validation of the vessel detector on ../shared/data/sen2ships.

3 folds of 3 ports (alphabetical): each fold trains on 5 ports, validates on 1 (the non-test port with most
labels: early stopping and the operating threshold) and tests on 3 it never saw. The non-learned NDWI +
contrast baseline gets its threshold on the same 6 non-test ports and is tested on the same 3. Optionally
(``--all``) times training on all 9 ports (the last, by label count, as validation).

Usage::

    .venv/bin/python benchmarks/bench_detectors.py --out benchmarks/out/detectors [--data DIR] [--folds 3] \
        [--validation-ports 1] [--steps N] [--all] \
        [--set '{"chips": {"size": 192}, "batch_size": 4}']

Writes ``OUT/crossval.json`` and ``OUT/table.md`` (the table of benchmarks/README.md, issue 4).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from fieldtruth.detectors.baseline import fit_vessel_baseline
from fieldtruth.detectors.bundle import load_bundle
from fieldtruth.detectors.crossval import make_folds, run_crossval
from fieldtruth.detectors.train import TrainConfig, train_detector
from fieldtruth.tests.data.shared import data_folder_or_exit, shared_data_root


def _table(summary: dict) -> str:
    learned, base = summary["learned"], summary["baseline"]
    lines = [
        "| port | learned P | learned R | learned F1 | learned AP | baseline P | baseline R | baseline F1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scene, f in learned["per_scene"].items():
        b = base["per_scene"][scene]
        lines.append(
            f"| {scene} | {f['precision']:.2f} | {f['recall']:.2f} | {f['f1']:.2f} | {f['ap']:.2f} | "
            f"{b['precision']:.2f} | {b['recall']:.2f} | {b['f1']:.2f} |"
        )
    p, q = learned["pooled"], base["pooled"]
    lines.append(
        f"| **pooled** | {p['precision']:.2f} | {p['recall']:.2f} | **{p['f1']:.2f}** | {p['ap']:.2f} | "
        f"{q['precision']:.2f} | {q['recall']:.2f} | **{q['f1']:.2f}** |"
    )
    ci, cb = p.get("ci95", {}), q.get("ci95", {})
    if ci:
        lines.append(
            f"\nBootstrap 95 % intervals over ports: learned F1 [{ci['f1'][0]:.2f}, {ci['f1'][1]:.2f}], "
            f"P [{ci['precision'][0]:.2f}, {ci['precision'][1]:.2f}], "
            f"R [{ci['recall'][0]:.2f}, {ci['recall'][1]:.2f}]; "
            f"baseline F1 [{cb['f1'][0]:.2f}, {cb['f1'][1]:.2f}]."
        )
    lines.append(f"Learned minus baseline pooled F1: {p['f1'] - q['f1']:+.2f}.")
    for i, fold in enumerate(summary["folds"]):
        v = fold.get("validation_figures")
        if v and fold["validation"]:
            lines.append(
                f"Fold {i}: validation {' + '.join(fold['validation'])} F1 {v['f1']:.2f} AP {v['ap']:.2f} "
                "(threshold "
                f"{fold['threshold']:.3f}, min distance {v['min_distance_px']} px, box suppression "
                f"{v['box_suppression']}); trained {fold['train_seconds']:.0f} s."
            )
        if expected := fold.get("expected_on_new_scenes"):
            low, high = expected["ci95"]
            lines.append(
                f"Fold {i}: no validation port; threshold {fold['threshold']:.3f} cross-fitted over "
                f"{expected['folds']} folds of its training ports; its card expects F1 {expected['f1']:.2f} "
                f"[{low:.2f}, {high:.2f}] on new scenes, its test ports gave {fold['test_f1']:.2f}; "
                f"trained {fold['train_seconds']:.0f} s."
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Run the benchmark (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/detectors"))
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument(
        "--data",
        type=Path,
        default=shared_data_root() / "sen2ships",
        help="folder of labelled port scenes (default: sen2ships)",
    )
    parser.add_argument(
        "--validation-ports", type=int, default=1,
        help="validation ports per fold (most labels first); 0: none, every non-test port trained on and "
             "the threshold cross-fitted over them, as `fieldtruth train` does without --val",
    )
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all", action="store_true", help="also time training on all 9 ports")
    parser.add_argument("--preset", default="vessels", help="the TrainConfig preset (default: vessels)")
    parser.add_argument(
        "--set", default="{}", help="JSON object of TrainConfig settings over the vessels preset"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(2)
    ports = sorted(p for p in data_folder_or_exit(args.data).iterdir() if p.is_dir())
    overrides = {"seed": args.seed, **({"steps": args.steps} if args.steps else {}), **json.loads(args.set)}
    config = TrainConfig.from_mapping(overrides, args.preset)
    started = time.perf_counter()
    folds = make_folds(ports, args.folds, args.validation_ports)
    summary = run_crossval(folds, args.out, config, baseline=fit_vessel_baseline, say=print).to_dict()
    summary["crossval_seconds"] = round(time.perf_counter() - started, 1)
    for i, fold in enumerate(summary["folds"]):  # what the validation port said (the only figures tuned on)
        card = load_bundle(args.out / f"fold{i}.safetensors").card
        fold["validation_figures"] = {
            "f1": card.metrics.overall.f1,
            "ap": card.metrics.average_precision,
            "min_distance_px": card.min_distance_px,
            "box_suppression": card.box_suppression,
        }
    if args.all:
        t0 = time.perf_counter()
        by_labels = sorted(ports, key=lambda p: json.loads((p / "scene.json").read_text())["labels"])
        train_detector(by_labels[:-1], args.out / "all-ports.safetensors", config, val_dirs=by_labels[-1:])
        summary["train_all_ports_seconds"] = round(time.perf_counter() - t0, 1)
    (args.out / "crossval.json").write_text(json.dumps(summary, indent=1))
    (args.out / "table.md").write_text(_table(summary))
    print(_table(summary))
    print(json.dumps({k: v for k, v in summary.items() if k.endswith("seconds")}))


if __name__ == "__main__":
    main()
