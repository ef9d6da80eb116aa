"""Fine-tuning a bundle on a region's decisions, and choosing its threshold from those decisions.

``--init BUNDLE`` starts training from a bundle: its weights, and the settings the weights only make
sense with (architecture, bands, classes, normalisation, scene offsets, pixel size) come from its card;
settings that disagree with them are refused (:func:`check_init`), never silently changed. A fine-tune
starts from :data:`FINETUNE_SETTINGS` (few steps, a tenth of the vessels preset's learning rate, every
chip centred on a decided lead, no hard-negative mining: a window of decisions holds unreviewed leads
that mining would take for false detections; batch-norm statistics kept as trained), which the
command's config file and options override. Confirmed leads take the box size the bundle predicts at
their place (:func:`with_predicted_sizes`); the decisions are partial labels (see
:mod:`fieldtruth.detectors.decisions`); the bundle's own training scenes, given beside the decisions,
are replayed so it does not forget (on sen2ships, the recipe that did not lose F1).

The threshold of a detector trained on decisions is chosen on decisions it did not learn from: the
decision windows are cross-fitted in two folds (a checkerboard of grid cells, so neighbouring windows fall
in different folds and a window never scores its own decisions), each fold's model scores the other
fold's decided leads, and the threshold is the F1-best one over those out-of-fold scores (confirmed
leads are the positives, rejected ones the negatives). It costs two more fits of the same length (done
before the final fit: the do-no-harm guard, :mod:`fieldtruth.detectors.guard`, judges the fine-tune on
the same out-of-fold scores and skips the final fit when it keeps the starting bundle). A
fine-tuned bundle's threshold never drops below the one it started with: its decisions only sample the
leads that threshold let through, so they cannot tell how many false leads lie below it (on sen2ships,
the unbounded choice fell to the floor of 0.05 and halved F1 on the unreviewed half of a port).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fieldtruth.detectors.bundle import LoadedBundle
from fieldtruth.detectors.card import ModelCard
from fieldtruth.detectors.config import TrainConfig
from fieldtruth.detectors.decisions import CONFIRMED, DecidedLead, DecisionWindow
from fieldtruth.detectors.errors import TrainingError
from fieldtruth.detectors.fit import VALIDATION_HALO
from fieldtruth.detectors.metrics import Figures
from fieldtruth.detectors.predict import detect_scene, heads

log = logging.getLogger(__name__)

#: A fine-tune's settings, laid over the preset before the config file and the options.
FINETUNE_SETTINGS: dict[str, Any] = {
    "steps": 40, "lr": 3e-4, "batch_size": 8, "ensemble": 1,
    "chips": {"mine_at": [], "positive_fraction": 0.5, "hard_fraction": 0.5},
    "validation": {"every": 0, "patience": 0, "min_distance_choices": [], "box_suppression_choices": []},
}
#: Settings a bundle fixes: a config file may repeat them, never change them.
FIXED_BY_BUNDLE = ("architecture", "architecture_args", "bands", "classes", "scene_offset")
#: Fewest confirmed and rejected decisions (each) for a threshold cross-fitted on decisions.
MIN_EACH = 3


def check_init(bundle: LoadedBundle, values: Mapping[str, Any], source: str) -> None:
    """Refuse settings that disagree with the bundle training starts from.

    Args:
        bundle: the bundle of ``--init``.
        values: the settings given explicitly (a config file's keys).
        source: where they come from, for the message.

    Raises:
        TrainingError: a setting of :data:`FIXED_BY_BUNDLE` differs from the bundle's.
    """
    card = bundle.card
    have = {"architecture": card.architecture, "architecture_args": dict(card.architecture_args),
            "bands": list(card.bands), "classes": list(card.classes), "scene_offset": dict(card.scene_offset)}
    for key in FIXED_BY_BUNDLE:
        if key in values and _plain(values[key]) != _plain(have[key]):
            raise TrainingError(
                f"{source} sets {key} {values[key]!r}, but the bundle {str(bundle.path)!r} to start from has "
                f"{have[key]!r}; its weights only work with its own {key}: drop the setting, or train from "
                "scratch without --init")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def config_from_bundle(config: TrainConfig, bundle: LoadedBundle) -> TrainConfig:
    """``config`` with the settings the bundle fixes (one model: a bundle's ensemble is tuned as one)."""
    card = bundle.card
    return dataclasses.replace(
        config, architecture=card.architecture, architecture_args=dict(card.architecture_args),
        bands=tuple(card.bands), classes=tuple(card.classes), scene_offset=dict(card.scene_offset),
        gsd_m=card.gsd_m, ensemble=1)


@dataclass(frozen=True)
class ScoredLead:
    """A decided lead with a model's score at its place (0 when the model finds nothing there), and the
    cross-fitting fold it was held out in (None when it was not cross-fitted)."""

    confirmed: bool
    score: float
    fold: int | None = None


def with_predicted_sizes(bundle: LoadedBundle, windows: Sequence[DecisionWindow]) -> list[DecisionWindow]:
    """The windows with each confirmed lead sized as the bundle predicts it at the lead's place (its size
    head read in the cell holding the lead, on the lead's own window), so a fine-tune does not retrain
    the size head and the peak suppression it drives to the declared point size. Unchanged when the
    bundle has no size head."""
    sized: dict[DecidedLead, DecidedLead] = {}
    for window in windows:
        mine = [lead for lead in window.own if lead.decision == CONFIRMED]
        if not mine:
            continue
        _, sizes = heads(bundle, window.data, window.valid)
        if sizes is None:
            return list(windows)
        stride = window.valid.shape[0] / sizes.shape[1]
        for lead in mine:
            col = (lead.x - window.bounds.left) / window.resolution
            row = (window.bounds.top - lead.y) / window.resolution
            i = min(int(row / stride), sizes.shape[1] - 1)
            j = min(int(col / stride), sizes.shape[2] - 1)
            h, w = (max(float(v), 1.0) for v in sizes[:, i, j])
            sized[lead] = dataclasses.replace(lead, size_px=(h, w))
    return [dataclasses.replace(w, inside=tuple(sized.get(lead, lead) for lead in w.inside),
                                own=tuple(sized.get(lead, lead) for lead in w.own)) for w in windows]


def fold_of(cell: tuple[int, int]) -> int:
    """The cross-fitting fold of a grid cell (a checkerboard)."""
    return (cell[0] + cell[1]) % 2


def score_leads(
    model: torch.nn.Module, card: ModelCard, windows: Sequence[DecisionWindow], config: TrainConfig
) -> list[ScoredLead]:
    """Score each window's own decided leads: the best detection (score >= 0.05) within the match
    tolerance of the lead's square, else 0."""
    bundle = LoadedBundle(model=model.eval(), card=card, sha256="", path=Path())
    reach = windows[0].point_size_px / 2 + config.validation.tolerance_px if windows else 0.0
    out = []
    for window in windows:
        found = detect_scene(bundle, window.data, window.valid, tile=config.validation.tile,
                             halo=VALIDATION_HALO, threshold=0.05)
        for lead in window.own:
            col = (lead.x - window.bounds.left) / window.resolution
            row = (window.bounds.top - lead.y) / window.resolution
            near = [d.score for d in found if max(abs(d.row - row), abs(d.col - col)) <= reach]
            out.append(ScoredLead(lead.decision == CONFIRMED, max(near, default=0.0)))
    return out


def enough_for_crossfit(windows: Sequence[DecisionWindow]) -> bool:
    """Whether the decisions can choose a threshold: :data:`MIN_EACH` confirmed and rejected leads, and
    both folds holding decisions."""
    leads = [lead for w in windows for lead in w.own]
    confirmed = sum(lead.decision == CONFIRMED for lead in leads)
    folds = {fold_of(w.cell) for w in windows}
    return confirmed >= MIN_EACH and len(leads) - confirmed >= MIN_EACH and folds == {0, 1}


def choose_on_decisions(scored: Sequence[ScoredLead], floor: float = 0.05) -> tuple[float, Figures]:
    """The F1-best threshold over decided leads (within [floor, 0.95]) and the figures there.

    Precision is the share of leads kept that reviewers confirmed; recall the share of confirmed leads
    kept (vessels no lead pointed to are not counted: the decisions do not know them).
    """
    if not scored:
        raise TrainingError("no decided lead to choose a threshold on")
    scores = np.array([s.score for s in scored])
    positive = np.array([s.confirmed for s in scored])
    best = (-1.0, 0.5)
    floor = min(max(floor, 0.05), 0.95)
    for t in sorted({min(max(float(v), floor), 0.95) for v in scores}):
        f1 = _f1(scores >= t, positive)
        if f1 > best[0] + 1e-12:
            best = (f1, t)
    return best[1], figures_at(scored, best[1])


def figures_at(scored: Sequence[ScoredLead], threshold: float) -> Figures:
    """Precision, recall, F1 and AP over decided leads at ``threshold`` (as :func:`choose_on_decisions`
    counts them)."""
    scores = np.array([s.score for s in scored], dtype=float)
    positive = np.array([s.confirmed for s in scored], dtype=bool)
    kept = scores >= threshold
    tp, fp = int((kept & positive).sum()), int((kept & ~positive).sum())
    fn = int((~kept & positive).sum())
    return Figures(
        precision=round(tp / max(tp + fp, 1), 4), recall=round(tp / max(tp + fn, 1), 4),
        f1=round(_f1(kept, positive), 4), ap=round(_average_precision(scores, positive), 4),
        tp=tp, fp=fp, fn=fn, n_labels=int(positive.sum()))


def _f1(kept: np.ndarray, positive: np.ndarray) -> float:
    tp = float((kept & positive).sum())
    denominator = 2 * tp + float((kept & ~positive).sum()) + float((~kept & positive).sum())
    return 2 * tp / denominator if denominator else 0.0


def _average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Average precision of ranking the decided leads by score (leads scored 0 are never found)."""
    if not positive.any():
        return 0.0
    order = np.argsort(-scores, kind="stable")
    hits = positive[order] & (scores[order] > 0)
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / positive.sum())
