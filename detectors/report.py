"""Evaluating a bundle on labelled scenes: per-scene and pooled figures, bootstrap intervals, a report.

The detector runs over each whole scene exactly as a scan does (by default on the scan's own grid, see
:mod:`fieldtruth.detectors.scangrid`; or on the scene's native pixels), detections are matched
to the labels (one-to-one, greedy by score, tolerance in pixels) and scored at the card's operating
threshold; average precision uses every detection down to score 0.05. Confidence intervals resample
whole scenes with replacement (scenes, not vessels, are the independent units), 1000 times, seeded.
``write_report`` writes ``report.json`` and a readable ``report.html`` with the precision-recall curve.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fieldtruth.detectors.bundle import LoadedBundle
from fieldtruth.detectors.data import load_training_scene, open_scene_with_bands
from fieldtruth.detectors.evaluate import Scores, merge_scores, score_detections
from fieldtruth.detectors.predict import detect_scene
from fieldtruth.detectors.scangrid import default_halo, detect_like_a_scan, labels_on_grid, scan_grid
from fieldtruth.detectors.sceneoffset import prepare_scenes

log = logging.getLogger(__name__)

#: Lowest score kept for the precision-recall curve and average precision.
CURVE_FLOOR = 0.05


@dataclass(frozen=True)
class SceneResult:
    """Matching of one scene: its id and the scores of every detection down to :data:`CURVE_FLOOR`."""

    scene_id: str
    scores: Scores


#: Where evaluation detects: the grid a scan reads (``scan``), or the scene's own pixels (``native``).
GRIDS = ("scan", "native")


def evaluate_scenes(
    bundle: LoadedBundle, scene_dirs: Sequence[Path], *, tolerance_px: float = 1.0, tile: int = 512,
    halo: int | None = None, grid: str = "scan",
) -> list[SceneResult]:
    """Detect over each labelled scene and match the detections to its labels (the bundle's classes).

    Tiles and halo are those of a scan (see :func:`default_halo` when None). With ``grid="scan"`` the
    scene is read onto the scan's grid (the card's pixel size; UTM for Web-Mercator imagery), so the
    figures are those of ``fieldtruth scan``; the tolerance is in that grid's pixels. ``"native"`` reads
    the scene's own pixels, as training's validation does.
    """
    if grid not in GRIDS:
        raise ValueError(f"grid must be one of {GRIDS!r}, got {grid!r}")
    halo = halo if halo is not None else default_halo(bundle)
    out = []
    for path in scene_dirs:
        if grid == "scan":
            scene_id, found, labels = _on_scan_grid(bundle, Path(path), tile, halo)
        else:
            scene = load_training_scene(Path(path), bundle.card.bands, bundle.card.scene_offset)
            scene_id, labels = scene.id, scene.labels
            found = detect_scene(bundle, scene.data, scene.valid, tile=tile, halo=halo, threshold=CURVE_FLOOR)
        labels = [lab for lab in labels if lab.label in bundle.card.classes]
        out.append(SceneResult(scene_id, score_detections(found, labels, tolerance_px=tolerance_px)))
        log.info("evaluated %s: %d detection(s), %d label(s)", scene_id, len(found), len(labels))
    return out


def _on_scan_grid(bundle: LoadedBundle, path: Path, tile: int, halo: int) -> tuple[str, list, list]:
    card = bundle.card
    scene = open_scene_with_bands(path, tuple(card.bands), role="evaluation")
    scene = prepare_scenes([scene], card.bands, card.scene_offset)[0]
    on_grid = scan_grid(bundle, scene, tile_size=tile, halo=halo)
    found = detect_like_a_scan(bundle, scene, on_grid, threshold=CURVE_FLOOR)
    return scene.id, found, labels_on_grid(path, scene, on_grid)


def figures(scores: Scores, threshold: float) -> dict[str, Any]:
    """Precision, recall, F1 and counts at ``threshold``, and AP over the whole curve."""
    at = scores.at_threshold(threshold)
    return {
        "precision": round(at.precision, 4), "recall": round(at.recall, 4), "f1": round(at.f1, 4),
        "ap": round(scores.average_precision, 4), "tp": at.tp, "fp": at.fp, "fn": at.fn, "n_labels": at.n_labels,
    }


def bootstrap(results: Sequence[SceneResult], threshold: float, *, n: int = 1000, seed: int = 0) -> dict[str, list[float]]:
    """95 % percentile intervals of pooled precision, recall, F1 and AP, resampling whole scenes."""
    if len(results) < 2:
        return {}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {"precision": [], "recall": [], "f1": [], "ap": []}
    for _ in range(n):
        pick = rng.integers(len(results), size=len(results))
        pooled = figures(merge_scores([results[i].scores for i in pick]), threshold)
        for key in draws:
            draws[key].append(pooled[key])
    return {k: [round(float(np.percentile(v, 2.5)), 4), round(float(np.percentile(v, 97.5)), 4)] for k, v in draws.items()}


def build_report(
    results: Sequence[SceneResult], threshold: float, *, detector: dict[str, Any], tolerance_px: float,
) -> dict[str, Any]:
    """The JSON report: pooled figures with bootstrap intervals, per-scene figures, and the curve."""
    pooled_scores = merge_scores([r.scores for r in results])
    pooled = figures(pooled_scores, threshold)
    pooled["ci95"] = bootstrap(results, threshold)
    return {
        "detector": detector, "threshold": threshold, "tolerance_px": tolerance_px,
        "pooled": pooled, "per_scene": {r.scene_id: figures(r.scores, threshold) for r in results},
        "curve": pr_curve(pooled_scores), "scenes": [r.scene_id for r in results],
        "note": "Labels may miss vessels: precision is a lower bound. Figures are valid only for scenes that "
                "played no part in training or in choosing the threshold.",
    }


def pr_curve(scores: Scores) -> dict[str, list[float]]:
    """Precision and recall at each distinct score of the ranked detections."""
    if not scores.ranked or not scores.n_labels:
        return {"score": [], "precision": [], "recall": []}
    hits = np.cumsum([hit for _, hit in scores.ranked])
    ranks = np.arange(1, len(hits) + 1)
    return {
        "score": [round(s, 4) for s, _ in scores.ranked],
        "precision": [round(float(v), 4) for v in hits / ranks],
        "recall": [round(float(v), 4) for v in hits / scores.n_labels],
    }


def _plot_png(report: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = report["curve"]
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    ax.plot(curve["recall"], curve["precision"], drawstyle="steps-post", label=f"pooled (AP {report['pooled']['ap']:.2f})")
    pooled = report["pooled"]
    ax.scatter([pooled["recall"]], [pooled["precision"]], color="red", zorder=3,
               label=f"operating point (threshold {report['threshold']:.2f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _row(name: str, f: dict[str, Any]) -> str:
    cells = [name] + [f"{f[k]:.3f}" for k in ("precision", "recall", "f1", "ap")] + [str(f[k]) for k in ("tp", "fp", "fn")]
    return "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"


def render_html(report: dict[str, Any]) -> str:
    """A self-contained HTML page (the PR plot embedded as a PNG data URI)."""
    png = base64.b64encode(_plot_png(report)).decode()
    ci = report["pooled"].get("ci95") or {}
    ci_text = ", ".join(f"{k} [{v[0]:.2f}, {v[1]:.2f}]" for k, v in ci.items()) or "too few scenes for intervals"
    rows = "".join(_row(k, v) for k, v in report["per_scene"].items()) + _row("pooled", report["pooled"])
    det = report["detector"]
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>fieldtruth evaluation</title>
<style>body{{font-family:sans-serif;max-width:52em;margin:2em auto}}td,th{{padding:.2em .6em;text-align:right}}
td:first-child{{text-align:left}}</style></head><body>
<h1>Detector evaluation</h1>
<p><b>{html.escape(str(det.get('name')))}</b> ({html.escape(str(det.get('architecture')))}), bundle sha256
<code>{html.escape(str(det.get('sha256', ''))[:16])}</code>; operating threshold {report['threshold']:.3f};
match tolerance {report['tolerance_px']} px; detected on the {html.escape(str(report.get('grid', 'scan')))} grid.</p>
<table><tr><th>scene</th><th>precision</th><th>recall</th><th>F1</th><th>AP</th><th>TP</th><th>FP</th><th>FN</th></tr>
{rows}</table>
<p>Bootstrap 95 % intervals over scenes: {html.escape(ci_text)}.</p>
<img alt="precision-recall curve" src="data:image/png;base64,{png}">
<p>{html.escape(report['note'])} Detections are leads for people to verify, never findings.</p>
</body></html>"""


def write_report(report: dict[str, Any], out_dir: Path) -> Path:
    """Write ``report.json`` and ``report.html`` into ``out_dir``; return the JSON path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (out_dir / "report.html").write_text(render_html(report), encoding="utf-8")
    return out_dir / "report.json"


def evaluate_bundle(
    bundle: LoadedBundle, scene_dirs: Sequence[Path], out_dir: Path | None = None, *, tolerance_px: float = 1.0,
    grid: str = "scan",
) -> dict[str, Any]:
    """Evaluate a bundle on labelled scenes at its operating threshold; write the report when ``out_dir`` is given.

    ``grid`` is where detection runs (see :func:`evaluate_scenes`); the report records it.
    """
    results = evaluate_scenes(bundle, scene_dirs, tolerance_px=tolerance_px, grid=grid)
    card = bundle.card
    detector = {"name": card.name, "architecture": card.architecture, "sha256": bundle.sha256, "split": card.split}
    report = build_report(results, card.threshold, detector=detector, tolerance_px=tolerance_px)
    report["grid"] = grid
    overlap = set(report["scenes"]) & (set(card.split.get("train", [])) | set(card.split.get("validation", [])))
    report["warning"] = (f"scenes {sorted(overlap)!r} were used in training or to choose the threshold: their figures "
                         "are optimistic") if overlap else None
    if out_dir is not None:
        write_report(report, out_dir)
    return report
