"""Evaluating a bundle on labelled scenes: per-scene and pooled figures, bootstrap intervals, a report.

The detector runs over each whole scene exactly as a scan does (by default on the scan's own grid, see
:mod:`fieldtruth.detectors.scangrid`; or on the scene's native pixels), detections are matched
to the labels (one-to-one, greedy by score, tolerance in pixels) and scored at the card's operating
threshold; average precision uses every detection down to score 0.05. Confidence intervals resample
whole scenes with replacement (scenes, not vessels, are the independent units), 1000 times, seeded.
The result is an :class:`EvaluationReport` (frozen); ``write_report`` writes it as ``report.json`` and a
readable ``report.html`` with the precision-recall curve.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from fieldtruth.detectors.bundle import LoadedBundle
from fieldtruth.detectors.data import load_training_scene, open_scene_with_bands
from fieldtruth.detectors.evaluate import Scores, merge_scores, score_detections
from fieldtruth.detectors.metrics import Figures
from fieldtruth.detectors.predict import detect_scene
from fieldtruth.detectors.scangrid import (
    default_halo,
    default_tile_size,
    detect_like_a_scan,
    labels_on_grid,
    scan_grid,
)
from fieldtruth.detectors.sceneoffset import prepare_scenes
from fieldtruth.detectors.scenesplit import check_roles

log = logging.getLogger(__name__)

#: Lowest score kept for the precision-recall curve and average precision.
CURVE_FLOOR = 0.05
#: How to read a report's figures (written into every report).
NOTE = ("Labels may miss vessels: precision is a lower bound. Figures are valid only for scenes that "
        "played no part in training or in choosing the threshold.")


@dataclass(frozen=True)
class SceneResult:
    """Matching of one scene: its id and the scores of every detection down to :data:`CURVE_FLOOR`."""

    scene_id: str
    scores: Scores


#: Where evaluation detects: the grid a scan reads (``scan``), or the scene's own pixels (``native``).
GRIDS = ("scan", "native")


def evaluate_scenes(
    bundle: LoadedBundle, scene_dirs: Sequence[Path], *, tolerance_px: float = 1.0, tile: int | None = None,
    halo: int | None = None, grid: str = "scan",
) -> list[SceneResult]:
    """Detect over each labelled scene and match the detections to its labels (the bundle's classes).

    Tiles and halo are those of a scan (see :func:`default_tile_size` and :func:`default_halo` when None).
    With ``grid="scan"`` the
    scene is read onto the scan's grid (the card's pixel size; UTM for Web-Mercator imagery), so the
    figures are those of ``fieldtruth scan``; the tolerance is in that grid's pixels. ``"native"`` reads
    the scene's own pixels, as training's validation does.
    """
    if grid not in GRIDS:
        raise ValueError(f"grid must be one of {GRIDS!r}, got {grid!r}")
    halo = halo if halo is not None else default_halo(bundle)
    tile = tile if tile is not None else default_tile_size(bundle, halo)
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


class Interval(NamedTuple):
    """A 95 % interval: its lower and upper bound."""

    low: float
    high: float


@dataclass(frozen=True)
class Intervals:
    """95 % bootstrap intervals (whole scenes resampled) of the pooled figures."""

    precision: Interval
    recall: Interval
    f1: Interval
    ap: Interval

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready: ``{figure: [low, high]}``."""
        return {name: list(getattr(self, name)) for name in ("precision", "recall", "f1", "ap")}


@dataclass(frozen=True)
class Curve:
    """The pooled precision-recall curve: precision and recall at each ranked detection's score."""

    score: tuple[float, ...] = ()
    precision: tuple[float, ...] = ()
    recall: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready lists."""
        return {"score": list(self.score), "precision": list(self.precision), "recall": list(self.recall)}


@dataclass(frozen=True)
class EvaluationReport:
    """What an evaluation found: pooled and per-scene figures at one threshold, intervals, the curve.

    Attributes:
        threshold: the operating threshold the figures are at. tolerance_px: the match tolerance.
        pooled: figures over every scene's detections together. ci95: their bootstrap intervals (None with
            fewer than two scenes). per_scene: figures of each scene, by id. scenes: the scene ids.
        curve: the pooled precision-recall curve (None where not kept).
        detector: the bundle evaluated (name, architecture, sha256, split); empty for pooled folds.
        grid: where detection ran (``scan`` or ``native``; None where not recorded).
        warning: set when an evaluated scene took part in training or in choosing the threshold.
        note: how to read the figures.
    """

    threshold: float
    tolerance_px: float
    pooled: Figures
    ci95: Intervals | None
    per_scene: Mapping[str, Figures]
    scenes: tuple[str, ...]
    curve: Curve | None = None
    detector: Mapping[str, Any] = field(default_factory=dict)
    grid: str | None = None
    warning: str | None = None
    note: str = NOTE

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``report.json`` holds (``ci95`` inside ``pooled``; ``{}`` without intervals)."""
        return {
            "detector": dict(self.detector), "threshold": self.threshold, "tolerance_px": self.tolerance_px,
            "pooled": {**self.pooled.to_dict(), "ci95": self.ci95.to_dict() if self.ci95 else {}},
            "per_scene": {k: v.to_dict() for k, v in self.per_scene.items()},
            "curve": self.curve.to_dict() if self.curve else None, "scenes": list(self.scenes),
            "note": self.note, "grid": self.grid, "warning": self.warning,
        }


def bootstrap(
    results: Sequence[SceneResult], threshold: float, *, n: int = 1000, seed: int = 0
) -> Intervals | None:
    """95 % percentile intervals of pooled precision, recall, F1 and AP, resampling whole scenes."""
    if len(results) < 2:
        return None
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {"precision": [], "recall": [], "f1": [], "ap": []}
    for _ in range(n):
        pick = rng.integers(len(results), size=len(results))
        pooled = figures_at(merge_scores([results[i].scores for i in pick]), threshold)
        for key in draws:
            draws[key].append(getattr(pooled, key))
    bounds = {k: Interval(*(round(float(np.percentile(v, q)), 4) for q in (2.5, 97.5)))
              for k, v in draws.items()}
    return Intervals(**bounds)


def figures_at(scores: Scores, threshold: float) -> Figures:
    """Precision, recall, F1 and counts at ``threshold``, and AP over the whole curve."""
    return Figures.of(scores.at_threshold(threshold), ap=scores.average_precision)


def build_report(
    results: Sequence[SceneResult], threshold: float, *, tolerance_px: float
) -> EvaluationReport:
    """Pooled figures with bootstrap intervals, per-scene figures, and the curve, at ``threshold``."""
    pooled = merge_scores([r.scores for r in results])
    return EvaluationReport(
        threshold=threshold, tolerance_px=tolerance_px, pooled=figures_at(pooled, threshold),
        ci95=bootstrap(results, threshold), scenes=tuple(r.scene_id for r in results), curve=pr_curve(pooled),
        per_scene={r.scene_id: figures_at(r.scores, threshold) for r in results},
    )


def pr_curve(scores: Scores) -> Curve:
    """Precision and recall at each distinct score of the ranked detections."""
    if not scores.ranked or not scores.n_labels:
        return Curve()
    hits = np.cumsum([hit for _, hit in scores.ranked])
    ranks = np.arange(1, len(hits) + 1)
    return Curve(
        score=tuple(round(s, 4) for s, _ in scores.ranked),
        precision=tuple(round(float(v), 4) for v in hits / ranks),
        recall=tuple(round(float(v), 4) for v in hits / scores.n_labels),
    )


def _plot_png(report: EvaluationReport) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve, pooled = report.curve or Curve(), report.pooled
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    ax.plot(curve.recall, curve.precision, drawstyle="steps-post", label=f"pooled (AP {pooled.ap:.2f})")
    ax.scatter([pooled.recall], [pooled.precision], color="red", zorder=3,
               label=f"operating point (threshold {report.threshold:.2f})")
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


def _row(name: str, f: Figures) -> str:
    cells = [name, *(f"{v:.3f}" for v in (f.precision, f.recall, f.f1, f.ap)),
             *(str(v) for v in (f.tp, f.fp, f.fn))]
    return "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"


def render_html(report: EvaluationReport) -> str:
    """A self-contained HTML page (the PR plot embedded as a PNG data URI)."""
    png = base64.b64encode(_plot_png(report)).decode()
    ci = report.ci95.to_dict() if report.ci95 else {}
    ci_text = ", ".join(f"{k} [{v[0]:.2f}, {v[1]:.2f}]" for k, v in ci.items())
    ci_text = ci_text or "too few scenes for intervals"
    rows = "".join(_row(k, v) for k, v in report.per_scene.items()) + _row("pooled", report.pooled)
    det = report.detector
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>fieldtruth evaluation</title>
<style>body{{font-family:sans-serif;max-width:52em;margin:2em auto}}
td,th{{padding:.2em .6em;text-align:right}} td:first-child{{text-align:left}}</style></head><body>
<h1>Detector evaluation</h1>
<p><b>{html.escape(str(det.get('name')))}</b> ({html.escape(str(det.get('architecture')))}), bundle sha256
<code>{html.escape(str(det.get('sha256', ''))[:16])}</code>; operating threshold {report.threshold:.3f};
match tolerance {report.tolerance_px} px; detected on the {html.escape(str(report.grid or 'scan'))} grid.</p>
<table><tr><th>scene</th><th>precision</th><th>recall</th><th>F1</th><th>AP</th><th>TP</th><th>FP</th><th>FN</th></tr>
{rows}</table>
<p>Bootstrap 95 % intervals over scenes: {html.escape(ci_text)}.</p>
<img alt="precision-recall curve" src="data:image/png;base64,{png}">
<p>{html.escape(report.note)} Detections are leads for people to verify, never findings.</p>
</body></html>"""


def write_report(report: EvaluationReport, out_dir: Path) -> Path:
    """Write ``report.json`` and ``report.html`` into ``out_dir``; return the JSON path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report.to_dict(), indent=1), encoding="utf-8")
    (out_dir / "report.html").write_text(render_html(report), encoding="utf-8")
    return out_dir / "report.json"


def evaluate_bundle(
    bundle: LoadedBundle, scene_dirs: Sequence[Path], out_dir: Path | None = None, *,
    tolerance_px: float = 1.0, grid: str = "scan",
) -> EvaluationReport:
    """Evaluate a bundle on labelled scenes at its operating threshold; write the report when ``out_dir``
    is given.

    ``grid`` is where detection runs (see :func:`evaluate_scenes`); the report records it.
    """
    check_roles(scene_dirs, "evaluation")
    results = evaluate_scenes(bundle, scene_dirs, tolerance_px=tolerance_px, grid=grid)
    card = bundle.card
    detector = {"name": card.name, "architecture": card.architecture, "sha256": bundle.sha256,
                "precision": bundle.precision, "split": card.split}
    report = build_report(results, card.threshold, tolerance_px=tolerance_px)
    overlap = set(report.scenes) & (set(card.split.get("train", [])) | set(card.split.get("validation", [])))
    warning = (f"scenes {sorted(overlap)!r} were used in training or to choose the threshold: their figures "
               "are optimistic") if overlap else None
    report = dataclasses.replace(report, detector=detector, grid=grid, warning=warning)
    if out_dir is not None:
        write_report(report, out_dir)
    return report
