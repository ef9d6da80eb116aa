"""Choose between detector variants by nested leave-ports-out cross-validation, never looking at test ports.

For each outer fold of ``bench_detectors.py`` (3 folds of 3 ports), the six ports outside its test ports
are split again into 3 inner folds of 2 ports: each inner fold trains on 3 ports, validates on 1 (early
stopping, threshold) and tests on 2. Every variant is measured on the same inner folds; the variant with
the best pooled inner F1 is the fold's choice. The outer test ports are never read, so the held-out
figures of the chosen variants (from ``bench_detectors.py``) stay honest. Unlike one validation port per
fold (always the one with most labels, ordinary radiometry), the inner test ports include the
radiometrically odd ports, so a variant that helps on them can be chosen on evidence.

A variant is a folder of port scenes (``../shared/data/sen2ships``, or a copy made by
``normalise_ports.py``) and optional TrainConfig settings of its own (a JSON object after a second ``=``,
over those of ``--set``)::

    .venv/bin/python experiments/nested_choice.py --out experiments/out/nested \\
        --variant preset=../shared/data/sen2ships --variant wateroffset=experiments/out/sen2ships-wateroffset
    .venv/bin/python experiments/nested_choice.py --out experiments/out/nested-chips192 \\
        --variant preset=../shared/data/sen2ships \\
        --variant chips192='../shared/data/sen2ships={"chips": {"size": 192}, "batch_size": 4}'

Writes ``OUT/choice.json`` and prints a Markdown table for experiments/README.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from fieldtruth.detectors.crossval import make_folds, run_crossval
from fieldtruth.detectors.train import TrainConfig

OUTER_FOLDS, INNER_FOLDS = 3, 3


def _variant(text: str) -> tuple[str, Path, dict]:
    name, _, rest = text.partition("=")
    folder, _, settings = rest.partition("=")
    if not name or not folder:
        raise argparse.ArgumentTypeError(f"a variant is NAME=FOLDER or NAME=FOLDER=JSON, got {text!r}")
    try:
        overrides = json.loads(settings) if settings else {}
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"variant {name!r}: its settings are not JSON ({exc})") from exc
    return name, Path(folder), overrides


def main() -> None:
    """Run the nested choice (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("experiments/out/nested"))
    parser.add_argument(
        "--variant",
        type=_variant,
        action="append",
        required=True,
        help="NAME=FOLDER[=JSON]: port scenes, own settings",
    )
    parser.add_argument(
        "--set", default="{}", help="JSON object of TrainConfig settings over the vessels preset"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(2)
    common = {"seed": args.seed, **json.loads(args.set)}
    configs = {name: TrainConfig.from_mapping({**common, **own}, "vessels") for name, _, own in args.variant}
    names = {name: sorted(p.name for p in folder.iterdir() if p.is_dir()) for name, folder, _ in args.variant}
    ports = next(iter(names.values()))
    if any(found != ports for found in names.values()):
        raise SystemExit(f"the variants hold different ports: {names}")
    outer = make_folds([Path(p) for p in ports], OUTER_FOLDS)
    rows, started = [], time.perf_counter()
    for i, fold in enumerate(outer):
        inner_ports = sorted(p.name for p in (*fold.train, *fold.validation))
        scores = {}
        for name, folder, _ in args.variant:
            inner = make_folds([folder / p for p in inner_ports], INNER_FOLDS)
            summary = run_crossval(inner, args.out / f"outer{i}" / name, configs[name], say=print)
            scores[name] = summary.learned.pooled.to_dict()
        chosen = max(scores, key=lambda n: scores[n]["f1"])
        rows.append(
            {
                "outer_fold": i,
                "test_ports_never_read": [p.name for p in fold.test],
                "inner_ports": inner_ports,
                "inner_pooled": scores,
                "chosen": chosen,
            }
        )
        print(
            f"outer fold {i}: inner F1 "
            + ", ".join(f"{n} {s['f1']:.2f}" for n, s in scores.items())
            + f" -> {chosen}",
            flush=True,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"folds": rows, "seconds": round(time.perf_counter() - started, 1)}
    (args.out / "choice.json").write_text(json.dumps(result, indent=1))
    variants = [name for name, _, _ in args.variant]
    print(
        "| outer fold | test ports (never read) | "
        + " | ".join(f"inner F1 / AP {n}" for n in variants)
        + " | chosen |"
    )
    print("|---|---|" + "---|" * len(variants) + "---|")
    for row in rows:
        cells = " | ".join(
            f"{row['inner_pooled'][n]['f1']:.2f} / {row['inner_pooled'][n]['ap']:.2f}" for n in variants
        )
        print(
            f"| {row['outer_fold']} | {', '.join(row['test_ports_never_read'])} | {cells} | {row['chosen']} |"
        )
    print(f"{result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
