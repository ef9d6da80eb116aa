"""Measured figures as typed values: one operating point (:class:`Figures`) and what a model card records
of its detector's validation (:class:`CardMetrics`).

Both are frozen and built once: from :class:`~fieldtruth.detectors.evaluate.Scores` where they are
measured, or from a card's JSON where a bundle is loaded (:meth:`CardMetrics.from_dict`, which refuses a
malformed value naming the field). ``to_dict`` gives the JSON a card or report holds; the card's JSON
keeps the shape earlier versions wrote (``overall`` with ``average_precision`` and ``tolerance``), so old
bundles load and readers of ``model_card.json`` (the maps) see what they always saw.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import pydantic

from fieldtruth.detectors.evaluate import Scores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Figures:
    """Precision, recall, F1 and counts at one threshold, and average precision.

    Attributes:
        precision: ``tp / (tp + fp)``. recall: ``tp / (tp + fn)``. f1: their harmonic mean.
        ap: average precision (over the whole curve, or the detections kept, as the producer says).
        tp: true positives. fp: false positives. fn: labels missed. n_labels: labels.
    """

    precision: float
    recall: float
    f1: float
    ap: float
    tp: int
    fp: int
    fn: int
    n_labels: int

    @classmethod
    def of(cls, scores: Scores, ap: float | None = None) -> Figures:
        """The figures of a matching (rounded to 4 places); ``ap`` instead of its own average precision."""
        return cls(
            precision=round(scores.precision, 4), recall=round(scores.recall, 4), f1=round(scores.f1, 4),
            ap=round(scores.average_precision if ap is None else ap, 4), tp=scores.tp, fp=scores.fp,
            fn=scores.fn, n_labels=scores.n_labels,
        )

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready figures, as evaluation reports write them (AP as ``ap``)."""
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "ap": self.ap,
                "tp": self.tp, "fp": self.fp, "fn": self.fn, "n_labels": self.n_labels}


#: A card's ``suppression_tried`` entry: minimum distance (px), box fraction, F1 on the validation scenes.
SuppressionTrial = tuple[int, float, float]


@dataclass(frozen=True)
class CardMetrics:
    """What a card records of how its detector did on the scenes its threshold was chosen on.

    Every field may be absent (None or empty): a baseline records fewer, and cards written by earlier
    versions lack some.

    Attributes:
        scenes: ids of the scenes measured on. threshold: the operating threshold chosen there.
        overall: figures at the threshold (AP over the detections kept). per_class: the same per class.
        tolerance_px: match tolerance of those figures (pixels).
        average_precision: AP over every detection down to the curve's floor.
        measured_on_held_out: whether those scenes were held out from training (validation scenes).
        suppression_tried: every peak suppression tried with the threshold, with its F1.
        train_seconds, steps_run, final_loss, kept_step, stopped_early: how training went.
        validations: ``(step, validation AP)`` of each validation while training.
        note: where the figures come from, in words.
    """

    scenes: tuple[str, ...] = ()
    threshold: float | None = None
    overall: Figures | None = None
    per_class: Mapping[str, Figures] = field(default_factory=dict)
    tolerance_px: float | None = None
    average_precision: float | None = None
    measured_on_held_out: bool | None = None
    suppression_tried: tuple[SuppressionTrial, ...] = ()
    train_seconds: float | None = None
    steps_run: int | None = None
    final_loss: float | None = None
    kept_step: int | None = None
    stopped_early: bool | None = None
    validations: tuple[tuple[int, float], ...] = ()
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The card's JSON ``metrics`` object (absent fields left out)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value == () or value == {}:
                continue
            if f.name == "overall":
                value = _card_figures(value, self.tolerance_px)
            elif f.name == "per_class":
                value = {name: _card_figures(v, self.tolerance_px) for name, v in value.items()}
            elif f.name == "tolerance_px":
                continue  # written inside each figures object, as ``tolerance``
            elif isinstance(value, tuple):
                value = [list(v) if isinstance(v, tuple) else v for v in value]
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "model card") -> CardMetrics:
        """Parse a card's ``metrics`` object; keys this version does not know are ignored (a later one's).

        Raises:
            ValueError: a known field is missing a part or holds a value of the wrong kind (naming it).
        """
        values = dict(data)
        if isinstance(values.get("overall"), Mapping):
            values["tolerance_px"] = values["overall"].get("tolerance")
            values["overall"] = _from_card_figures(values["overall"])
        if isinstance(values.get("per_class"), Mapping):
            values["per_class"] = {k: _from_card_figures(v) if isinstance(v, Mapping) else v
                                   for k, v in values["per_class"].items()}
        try:
            return _ADAPTER.validate_python(values)
        except pydantic.ValidationError as exc:
            problems = "; ".join(f"metrics.{'.'.join(map(str, e['loc']))}: {e['msg']} "
                                 f"(got {e.get('input')!r})" for e in exc.errors())
            raise ValueError(f"{source}: {problems}") from exc


def _card_figures(figures: Figures, tolerance: float | None) -> dict[str, Any]:
    """Figures as a card writes them: AP as ``average_precision``, and the match ``tolerance``."""
    out: dict[str, Any] = {k: v for k, v in figures.to_dict().items() if k != "ap"}
    out["average_precision"] = figures.ap
    if tolerance is not None:
        out["tolerance"] = tolerance
    return out


def _from_card_figures(data: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`_card_figures` (the tolerance is read by the caller)."""
    out = {k: v for k, v in data.items() if k not in ("average_precision", "tolerance")}
    if "average_precision" in data:
        out["ap"] = data["average_precision"]
    return out


_ADAPTER = pydantic.TypeAdapter(CardMetrics)
