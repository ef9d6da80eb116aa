"""What K reviewed leads buy: the simulated review loop on sen2ships, leave ports out (issue 18).

For each test port P of the three leave-ports-out fold bundles (a bundle never trained or validated on
its test ports): the port's scan grid is split into two halves side by side on the ground (west A, east
B); the fold bundle scans the whole port as a scan does; a simulated reviewer (the labels as oracle: a lead
within the one-pixel tolerance of a labelled vessel is confirmed, any other rejected) decides the first K
leads of half A in the queue's order; the bundle is fine-tuned on those decisions
(``train_detector(reviewed=..., init=bundle)``, the settings of ``fieldtruth train --from-review --init``:
windows read from half A only, partial labels within ``--partial`` px of the decisions, confirmed leads
sized by the bundle, threshold cross-fitted on the decisions), with ``--replay`` together with the fold's
own training ports (its ``crossval.json``); both bundles are measured on half B at their own thresholds.
The do-no-harm guard applies as in the command (:mod:`fieldtruth.detectors.guard`): where the fine-tune
does worse than the fold bundle on the decisions out of fold, or the decisions are too few to check it,
"after" is the fold bundle itself (``--adopt-anyway`` measures every fine-tune, as before the guard).
Pooled over the ports, with bootstrap intervals over ports. Two ceilings are printed beside them: the
best threshold for each B half (chosen on its labels), and every false lead at the bundle's threshold
removed; a review round that only re-scores the leads a scan found cannot beat the second.

    .venv/bin/python benchmarks/bench_review_loop.py --k 30 --order score --steps 40 --replay
    .venv/bin/python benchmarks/bench_review_loop.py --k 30 --order uncertain --steps 60 --ports algiers,busan

Prints one line per port and the pooled table; writes ``benchmarks/out/review_loop_<order>_k<K>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
from rasterio.coords import BoundingBox

from fieldtruth.detectors.bundle import LoadedBundle, load_bundle
from fieldtruth.detectors.config import TrainConfig
from fieldtruth.detectors.decisions import NEIGHBOURHOOD_PX, DecidedLead, ReviewedRun, decision_windows
from fieldtruth.detectors.evaluate import Scores, score_detections
from fieldtruth.detectors.finetune import (
    FINETUNE_SETTINGS,
    ScoredLead,
    choose_on_decisions,
    config_from_bundle,
)
from fieldtruth.detectors.labels import POINT_SIZE_PX
from fieldtruth.detectors.scangrid import (
    detect_like_a_scan,
    grid_transform,
    labels_on_grid,
    scan_grid,
)
from fieldtruth.detectors.sceneoffset import prepare_scenes
from fieldtruth.detectors.train import train_detector
from fieldtruth.imagery.grid import TileGrid
from fieldtruth.ingest.scene import open_scene
from fieldtruth.review.queue import farthest_point_order
from fieldtruth.tests.data.shared import data_folder_or_exit, shared_data_root

REPO = Path(__file__).resolve().parents[1]
FOLDS = {0: ("algiers", "athens", "busan"), 1: ("cartagena", "casablanca", "durban"),
         2: ("gdynia", "genoa", "klang")}
TOLERANCE_PX = 1.0


def half(grid: TileGrid, side: str) -> TileGrid:
    """The west (A) or east (B) half of a grid, on whole pixels."""
    left, bottom, right, top = grid.bounds
    mid = left + round((right - left) / grid.resolution / 2) * grid.resolution
    bounds = BoundingBox(left, bottom, mid, top) if side == "A" else BoundingBox(mid, bottom, right, top)
    return dataclasses.replace(grid, bounds=bounds)


def labels_inside(grid: TileGrid, labels: list) -> list:
    """The labels whose centre lies on ``grid`` (a half's labels from the whole port's)."""
    rows, cols = (grid.bounds.top - grid.bounds.bottom) / grid.resolution, (
        grid.bounds.right - grid.bounds.left) / grid.resolution
    return [lab for lab in labels if 0 <= lab.centre[0] < rows and 0 <= lab.centre[1] < cols]


def queue(found: list, threshold: float, order: str, rng: np.random.Generator) -> list:
    """The leads a scan writes (score >= threshold) in the queue's order (``fieldtruth review queue``'s
    orders; ``spread`` over the grid's pixels, as the queue does over the ground)."""
    leads = sorted((d for d in found if d.score >= threshold), key=lambda d: -d.score)
    if order == "score":
        return leads
    if order == "uncertain":
        return sorted(leads, key=lambda d: abs(d.score - threshold))
    if order == "spread":
        return (
            [leads[i] for i in farthest_point_order(np.array([[d.row, d.col] for d in leads]))]
            if leads
            else []
        )
    if order == "random":
        return [leads[i] for i in rng.permutation(len(leads))]
    raise SystemExit(f"unknown order {order!r}")


def decide(leads: list, labels: list) -> list[bool]:
    """The oracle: confirmed when the lead is within the tolerance of a labelled vessel."""
    return [any(lab.geometry.buffer(TOLERANCE_PX).contains(_point(d)) for lab in labels) for d in leads]


def _point(d):  # noqa: ANN001, ANN202
    from shapely.geometry import Point

    return Point(d.col, d.row)


def measure(  # noqa: ANN001
    bundle: LoadedBundle, scene, grid: TileGrid, labels: list, thresholds: tuple[float, ...] = ()
) -> list[tuple[Scores, Scores]]:
    """(all detections >= 0.05 for AP, those at a threshold) matched against the labels, at the card's
    threshold and at each of ``thresholds``."""
    found = detect_like_a_scan(bundle, scene, grid, threshold=0.05)
    every = score_detections(found, labels, tolerance_px=TOLERANCE_PX)
    return [
        (every, score_detections([d for d in found if d.score >= t], labels, tolerance_px=TOLERANCE_PX))
        for t in (bundle.card.threshold, *thresholds)
    ]


def run_port(port: str, fold: int, args: argparse.Namespace, out_dir: Path) -> dict:
    """The loop on one port: scan A, decide K, fine-tune, measure B before and after."""
    bundle = load_bundle(Path(args.bundles) / f"fold{fold}.safetensors")
    folder = shared_data_root() / "sen2ships" / port
    raw = open_scene(folder)
    scene = prepare_scenes([raw], bundle.card.bands, bundle.card.scene_offset)[0]
    grid = scan_grid(bundle, raw)
    a, b = half(grid, "A"), half(grid, "B")
    labels_a = labels_inside(a, labels_on_grid(folder, raw, a))
    labels_b = labels_inside(b, labels_on_grid(folder, raw, b))
    found_a = detect_like_a_scan(bundle, scene, a, threshold=0.05)
    leads = queue(found_a, bundle.card.threshold, args.order, np.random.default_rng(args.seed))[: args.k]
    verdicts = decide(leads, labels_a)
    to_crs = grid_transform(a)
    decided = [
        DecidedLead(*(to_crs * (d.col, d.row)), d.label, "confirmed" if ok else "rejected")
        for d, ok in zip(leads, verdicts, strict=True)
    ]
    own = (
        choose_on_decisions([ScoredLead(ok, d.score) for d, ok in zip(leads, verdicts, strict=True)])[0]
        if leads
        else bundle.card.threshold
    )
    (before_all, before), (_, own_before) = measure(bundle, scene, b, labels_b, (own,))
    record = {
        "port": port,
        "fold": fold,
        "k": len(decided),
        "confirmed": int(sum(verdicts)),
        "labels_a": len(labels_a),
        "labels_b": len(labels_b),
        "before": _fig(before_all, before),
        "threshold_only": _fig(before_all, own_before),
        "own_threshold": own,
        **ceilings(before_all, before),
    }
    if not any(verdicts):
        record.update(
            after=record["before"],
            after_carried=record["before"],
            seconds=0.0,
            threshold=bundle.card.threshold,
            chosen="nothing confirmed: bundle unchanged",
        )
        return record
    windows = decision_windows(
        [scene],
        grid,
        decided,
        tuple(bundle.card.bands),
        chip_size=args.chip,
        point_size_px=POINT_SIZE_PX,
        name=port,
        within=a.bounds,
        neighbourhood_px=args.partial or None,
    )
    replay = [shared_data_root() / "sen2ships" / p for p in _train_ports(args, fold)] if args.replay else []
    config = config_from_bundle(
        TrainConfig.from_mapping({}, args.preset)
        .merged(FINETUNE_SETTINGS)
        .merged({"steps": args.steps, "num_threads": args.threads, "chips": {"size": args.chip}}),
        bundle,
    )
    started = time.perf_counter()
    tuned = train_detector(
        replay,
        out_dir / f"{port}-{args.order}-k{args.k}{args.tag}.safetensors",
        config,
        reviewed=[ReviewedRun(port, tuple(windows), {"kind": "benchmark"})],
        init=bundle,
        adopt_anyway=args.adopt_anyway,
    )
    seconds = time.perf_counter() - started
    guard = {k: v for k, v in tuned.card.split.get("fine_tune", {}).items() if k != "tried_on"}
    (after_all, after), (_, carried) = measure(tuned, scene, b, labels_b, (bundle.card.threshold,))
    record.update(
        after=_fig(after_all, after),
        after_carried=_fig(after_all, carried),
        seconds=round(seconds, 1),
        threshold=tuned.card.threshold,
        chosen=tuned.card.split["threshold_chosen_on"] if guard.get("adopted") else "not adopted",
        before_threshold=bundle.card.threshold,
        guard=guard,
    )
    if args.others:
        record["others"] = {
            other: [_whole_port_f1(b_, other) for b_ in (bundle, tuned)]
            for other in FOLDS[fold]
            if other != port
        }
    return record


def ceilings(every: Scores, kept: Scores) -> dict:
    """What no review round can beat on half B without finding vessels the bundle missed: the best
    threshold for the half (chosen on its labels), and every false lead at the bundle's threshold removed
    (a perfect reviewer-taught filter)."""
    best = every.best_threshold()[1]
    return {
        "ceiling_threshold": _fig(every, best),
        "ceiling_filter": {"tp": kept.tp, "fp": 0, "fn": kept.fn, "f1": round(2 * kept.tp / max(
            2 * kept.tp + kept.fn, 1), 4)},
    }


def _guard_text(guard: dict | None) -> str:
    """The guard's figures for the port's line (decided leads, out of fold)."""
    if not guard:
        return ""
    if guard.get("tuned") is None:
        return f"; guard: {'adopted' if guard['adopted'] else 'kept the fold bundle'}, too few decisions"
    shipped = guard.get("tuned_shipped") or {}
    return (f"; guard on the decisions: F1 tuned {guard['tuned']['f1']:.3f} (at the threshold it ships with "
            f"{shipped.get('f1', float('nan')):.3f}) vs start {guard['start']['f1']:.3f} -> "
            f"{'adopted' if guard['adopted'] else 'kept the fold bundle'}")


def _whole_port_f1(bundle: LoadedBundle, port: str) -> dict:
    """The bundle's counts on a whole port it never saw, at its own threshold (the other-ports check)."""
    folder = shared_data_root() / "sen2ships" / port
    raw = open_scene(folder)
    scene = prepare_scenes([raw], bundle.card.bands, bundle.card.scene_offset)[0]
    grid = scan_grid(bundle, raw)
    [(every, kept)] = measure(bundle, scene, grid, labels_inside(grid, labels_on_grid(folder, raw, grid)))
    return _fig(every, kept)


def _train_ports(args: argparse.Namespace, fold: int) -> list[str]:
    """The ports the fold bundle was trained on (its cross-validation record)."""
    return json.loads((Path(args.bundles) / "crossval.json").read_text())["folds"][fold]["train"]


def _fig(every: Scores, kept: Scores) -> dict:
    return {
        "tp": kept.tp,
        "fp": kept.fp,
        "fn": kept.fn,
        "f1": round(kept.f1, 4),
        "ap": round(every.average_precision, 4),
        "every": [every.tp, every.fp, every.fn],
    }


def pooled(records: list[dict], key: str) -> tuple[float, float, float]:
    """(pooled F1, precision, recall) over the ports' B halves."""
    tp = sum(r[key]["tp"] for r in records)
    fp = sum(r[key]["fp"] for r in records)
    fn = sum(r[key]["fn"] for r in records)
    return 2 * tp / max(2 * tp + fp + fn, 1), tp / max(tp + fp, 1), tp / max(tp + fn, 1)


def bootstrap(records: list[dict], n: int = 2000, seed: int = 0) -> dict[str, list[float]]:
    """95 % intervals (ports resampled) of pooled F1 before, after, and of the gain."""
    rng = np.random.default_rng(seed)
    out = {"before": [], "after": [], "gain": [], "threshold_only_gain": []}
    for _ in range(n):
        sample = [records[i] for i in rng.integers(len(records), size=len(records))]
        f_before, f_after = pooled(sample, "before")[0], pooled(sample, "after")[0]
        out["before"].append(f_before)
        out["after"].append(f_after)
        out["gain"].append(f_after - f_before)
        out["threshold_only_gain"].append(pooled(sample, "threshold_only")[0] - f_before)
    return {
        k: [round(float(np.percentile(v, 2.5)), 3), round(float(np.percentile(v, 97.5)), 3)]
        for k, v in out.items()
    }


def main() -> None:
    """Run the loop over the chosen ports and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=30)
    parser.add_argument("--order", default="score", choices=["score", "uncertain", "spread", "random"])
    parser.add_argument("--steps", type=int, default=int(FINETUNE_SETTINGS["steps"]))
    parser.add_argument("--chip", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ports", default="", help="comma-separated subset of the nine test ports")
    parser.add_argument(
        "--bundles", type=Path, default=REPO / "benchmarks" / "out" / "detectors",
        help="folder of fold0..2.safetensors and crossval.json, as bench_detectors.py writes them "
             "[default: its default --out]",
    )
    parser.add_argument(
        "--partial",
        type=float,
        default=NEIGHBOURHOOD_PX,
        help="partial labels: supervise only this many px around decided leads (0: all)",
    )
    parser.add_argument(
        "--replay", action="store_true", help="mix in chips of the fold's own training ports (crossval.json)"
    )
    parser.add_argument(
        "--adopt-anyway", action="store_true", help="measure every fine-tune (the command's --adopt-anyway)"
    )
    parser.add_argument("--tag", default="", help="suffix of the output file (a variant's name)")
    parser.add_argument("--preset", default="vessels", help="the preset the fold bundles were trained with")
    parser.add_argument(
        "--others",
        action="store_true",
        help="also measure before and after on the fold's other test ports (whole ports)",
    )
    args = parser.parse_args()
    if not (args.bundles / "crossval.json").is_file():
        parser.error(f"{args.bundles} holds no crossval.json: run bench_detectors.py first, or name its "
                     "--out with --bundles")
    torch.set_num_threads(args.threads)
    data_folder_or_exit(shared_data_root() / "sen2ships")
    out_dir = REPO / "benchmarks" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = set(filter(None, args.ports.split(",")))
    records = []
    for fold, ports in FOLDS.items():
        for port in ports:
            if wanted and port not in wanted:
                continue
            r = run_port(port, fold, args, out_dir)
            records.append(r)
            print(
                f"{port:<11} fold {fold} K {r['k']:>3} confirmed {r['confirmed']:>3}  B before F1 "
                f"{r['before']['f1']:.3f} AP {r['before']['ap']:.3f} -> after F1 {r['after']['f1']:.3f} AP "
                f"{r['after']['ap']:.3f} (threshold only F1 {r['threshold_only']['f1']:.3f}, "
                "tuned at the old "
                f"threshold {r['after_carried']['f1']:.3f})  threshold {r.get('before_threshold', 0):.3f} -> "
                f"{r['threshold']:.3f} "
                f"({r['chosen']}) fine-tune {r['seconds']:.0f} s{_guard_text(r.get('guard'))}",
                flush=True,
            )
    before, after = pooled(records, "before"), pooled(records, "after")
    own, carried = pooled(records, "threshold_only"), pooled(records, "after_carried")
    print(
        f"fine-tuned at the threshold it started from: pooled F1 {carried[0]:.3f} (P {carried[1]:.2f} R "
        f"{carried[2]:.2f})"
    )
    print(
        f"threshold only (weights unchanged, F1-best threshold over the K decisions): pooled F1 "
        f"{own[0]:.3f} (P {own[1]:.2f} R {own[2]:.2f})"
    )
    for key, what in (("ceiling_threshold", "the best threshold for each B half, on its labels"),
                      ("ceiling_filter", "every false lead at the bundle's threshold removed")):
        f1, precision, recall = pooled(records, key)
        print(f"ceiling, {what}: pooled F1 {f1:.3f} (P {precision:.2f} R {recall:.2f}), "
              f"{f1 - before[0]:+.3f} over before")
    if args.others:
        pairs = [pair for r in records for pair in r["others"].values()]
        for i, when in enumerate(("before", "after")):
            tp, fp, fn = (sum(p[i][key] for p in pairs) for key in ("tp", "fp", "fn"))
            print(
                f"other ports of the fold, {when} (each fine-tune on its own port's decisions): pooled F1 "
                f"{2 * tp / max(2 * tp + fp + fn, 1):.3f} over {len(pairs)} (port, fine-tune) pairs"
            )
        worst = min(
            (p[1]["f1"] - p[0]["f1"], port, other)
            for r in records
            for other, p in r["others"].items()
            for port in [r["port"]]
        )
        print(f"largest loss on another port: {worst[0]:+.3f} ({worst[2]} after fine-tuning on {worst[1]})")
    guarded = [r for r in records if "guard" in r]
    kept = [r["port"] for r in guarded if not r["guard"].get("adopted")]
    print(f"guard: fine-tune not adopted on {len(kept)} of {len(guarded)} fine-tuned port(s) {kept}; its "
          f"own pass {sum(r['guard'].get('seconds', 0.0) for r in guarded):.1f} s in all")
    intervals = bootstrap(records)
    print(
        f"pooled over {len(records)} port(s): F1 {before[0]:.3f} (P {before[1]:.2f} R {before[2]:.2f}) -> "
        f"{after[0]:.3f} (P {after[1]:.2f} R {after[2]:.2f}); gain {after[0] - before[0]:+.3f}, 95 % "
        f"intervals over ports: before {intervals['before']}, after {intervals['after']}, gain "
        f"{intervals['gain']} (threshold only: {intervals['threshold_only_gain']}); fine-tune "
        f"{np.mean([r['seconds'] for r in records]):.0f} s per port"
    )
    (out_dir / f"review_loop_{args.order}_k{args.k}{args.tag}.json").write_text(
        json.dumps(
            {
                "args": {**vars(args), "bundles": str(args.bundles)},
                "ports": records,
                "pooled_before": before,
                "pooled_after": after,
                "pooled_threshold_only": own,
                "pooled_after_carried": carried,
                "pooled_ceilings": {k: pooled(records, k) for k in ("ceiling_threshold", "ceiling_filter")},
                "intervals": intervals,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
