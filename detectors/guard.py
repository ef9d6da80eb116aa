"""Do no harm: a fine-tune on a region's decisions is adopted only when it does no worse than the bundle it
started from, on decisions it did not learn from.

On sen2ships one review round of 30 decisions often made the detector worse on the rest of the port
(pooled F1 0.54 -> 0.43 from bundles with a cross-fitted threshold; two ports lost every vessel): a few
dozen decisions, mostly rejections, lower the scores without improving the ranking. So before a
fine-tuned bundle is written, it is compared with the bundle it started from on the same decided leads:

- the fine-tune's side is the out-of-fold scores the threshold is cross-fitted on (each lead scored by a
  model fine-tuned without its fold of the checkerboard, see :mod:`fieldtruth.detectors.finetune`), each
  fold's leads kept at the threshold chosen, as the fine-tune chooses it (F1-best, never below the
  starting one), on the other fold's leads (:func:`crossfit_figures`): neither the weights nor the
  threshold a lead is judged by have seen its decision. (The F1 at the threshold the bundle would ship
  with, chosen on all those scores, is recorded too; it leans towards the fine-tune: on sen2ships it
  adopted fine-tunes that lost 0.34 and 0.07 F1 on the rest of their ports.)
- the starting bundle's side is its own scores of those leads at its own threshold (it learned from none
  of them).

When the fine-tune's F1 there is below the starting bundle's, or the decisions are too few to measure it
(fewer than :data:`~fieldtruth.detectors.finetune.MIN_EACH` confirmed and rejected, or one fold of the
checkerboard empty), the bundle written is the starting one's weights and threshold, its card saying that
the fine-tune was not adopted and why (:func:`kept_card`); ``adopt_anyway`` (``--adopt-anyway``) keeps
the fine-tune, and the card says that too. The guard costs no extra fine-tune: it reuses the two fold
fits the threshold needs, and adds one pass of the starting bundle over the decision windows (seconds);
a fine-tune it will not adopt is not fitted at all (the final fit is skipped, and nothing is fitted when
the decisions are too few).

With validation scenes (``--val``) the threshold is chosen there, and so is the comparison
(:func:`check_on_scenes`): the fine-tune at the threshold chosen on them (which leans towards it) against
the starting bundle at its own; it costs one pass of the starting bundle over those scenes.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fieldtruth.detectors.bundle import LoadedBundle, load_bundle, save_bundle
from fieldtruth.detectors.card import ModelCard
from fieldtruth.detectors.config import TrainConfig
from fieldtruth.detectors.data import TrainingScene
from fieldtruth.detectors.decisions import CONFIRMED, DecisionWindow
from fieldtruth.detectors.finetune import MIN_EACH, ScoredLead, choose_on_decisions, figures_at, score_leads
from fieldtruth.detectors.metrics import Figures
from fieldtruth.detectors.threshold import measure_card

log = logging.getLogger(__name__)

#: How to keep a fine-tune the guard would not adopt (the command's flag).
OVERRIDE = "--adopt-anyway"


@dataclass(frozen=True)
class Verdict:
    """Whether a fine-tune is adopted, and the figures that decided it.

    Attributes:
        adopted: the fine-tuned weights are written (else the starting bundle's).
        forced: adopted only because ``adopt_anyway`` said so.
        reason: one line with the figures, for the log, the command and the card.
        leads: decided leads compared on.
        tuned: the fine-tune's figures that decided (out of fold over the decided leads, see
            :func:`crossfit_figures`; on validation scenes, at the threshold chosen there); None: not
            measured.
        start: the starting bundle's figures over them at ``start_threshold`` (None: not measured).
        tuned_threshold: the threshold the fine-tune would ship with (None: not measured).
        start_threshold: the starting bundle's threshold.
        tuned_shipped: for information, the fine-tune's out-of-fold figures over the decided leads at
            ``tuned_threshold``, chosen on all of them (None: not measured).
        seconds: time the guard's own pass took (the starting bundle scoring the decided leads).
    """

    adopted: bool
    forced: bool
    reason: str
    leads: int
    tuned: Figures | None
    start: Figures | None
    tuned_threshold: float | None
    start_threshold: float
    tuned_shipped: Figures | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON for the card's ``split["fine_tune"]``."""
        return {"adopted": self.adopted, "forced": self.forced, "reason": self.reason, "leads": self.leads,
                "tuned": self.tuned.to_dict() if self.tuned else None,
                "start": self.start.to_dict() if self.start else None,
                "tuned_threshold": self.tuned_threshold, "start_threshold": self.start_threshold,
                "tuned_shipped": self.tuned_shipped.to_dict() if self.tuned_shipped else None,
                "seconds": self.seconds}


def judge(
    tuned: Sequence[ScoredLead], tuned_threshold: float, start: Sequence[ScoredLead], start_threshold: float,
    *, adopt_anyway: bool = False,
) -> Verdict:
    """Compare a fine-tune's out-of-fold scores of the decided leads with the starting bundle's scores of
    the same leads, each at its own threshold: adopted unless the fine-tune's F1 is lower.

    Raises:
        ValueError: the two sides do not hold the same number of leads, confirmed alike.
    """
    if sorted(s.confirmed for s in tuned) != sorted(s.confirmed for s in start):
        raise ValueError(f"the fine-tune was scored on {len(tuned)} decided leads and the starting bundle on "
                         f"{len(start)}, not the same confirmed and rejected ones; score both on the same "
                         "windows")
    shipped, theirs = figures_at(tuned, tuned_threshold), figures_at(start, start_threshold)
    ours = crossfit_figures(tuned, start_threshold)
    where = f"over {len(tuned)} decided leads it did not learn from ({shipped.n_labels} confirmed)"
    if ours is None:  # folds unknown: the threshold it would ship with
        verdict = compare(shipped, f"at its threshold {tuned_threshold:.3f}", theirs, start_threshold, where,
                          adopt_anyway=adopt_anyway)
    else:
        how = (f"with each fold's threshold chosen on the other fold (at the threshold it would ship with, "
               f"{tuned_threshold:.3f}: {shipped.f1:.3f})")
        verdict = compare(ours, how, theirs, start_threshold, where, adopt_anyway=adopt_anyway)
    return dataclasses.replace(verdict, leads=len(tuned), tuned_threshold=tuned_threshold,
                               tuned_shipped=shipped)


def compare(
    ours: Figures, how: str, theirs: Figures, start_threshold: float, where: str, *,
    adopt_anyway: bool = False,
) -> Verdict:
    """Adopt the fine-tune (figures ``ours``, measured as ``how`` says) unless its F1 is below the starting
    bundle's (``theirs``, at its own threshold), both measured ``where`` (words for the reason)."""
    harms = ours.f1 < theirs.f1
    figures = (f"{where}, F1 {ours.f1:.3f} {how} against {theirs.f1:.3f} for the bundle started from at "
               f"its threshold {start_threshold:.3f}")
    if not harms:
        reason = f"fine-tune adopted: {figures}"
    elif adopt_anyway:
        reason = f"fine-tune adopted with {OVERRIDE} although it does worse: {figures}"
    else:
        reason = (f"fine-tune NOT adopted, it does worse: {figures}; the bundle written is the one started "
                  f"from (its weights and threshold); {OVERRIDE} keeps the fine-tune")
    return Verdict(adopted=not harms or adopt_anyway, forced=harms and adopt_anyway, reason=reason,
                   leads=0, tuned=ours, start=theirs, tuned_threshold=None, start_threshold=start_threshold)


def crossfit_figures(tuned: Sequence[ScoredLead], floor: float) -> Figures | None:
    """The fine-tune's figures over the decided leads when each fold's leads are kept at the threshold
    chosen (never below ``floor``) on the other fold's: no lead helps choose the threshold it is judged
    at. None when the leads' folds are not 0 and 1, both holding leads."""
    folds = {lead.fold for lead in tuned}
    if folds != {0, 1}:
        return None
    kept = []
    for fold in (0, 1):
        threshold, _ = choose_on_decisions([lead for lead in tuned if lead.fold != fold], floor)
        kept += [(lead.confirmed, lead.score >= threshold) for lead in tuned if lead.fold == fold]
    tp = sum(c and k for c, k in kept)
    fp, fn = sum(k and not c for c, k in kept), sum(c and not k for c, k in kept)
    return Figures(precision=round(tp / max(tp + fp, 1), 4), recall=round(tp / max(tp + fn, 1), 4),
                   f1=round(2 * tp / max(2 * tp + fp + fn, 1), 4), ap=figures_at(tuned, floor).ap, tp=tp,
                   fp=fp, fn=fn, n_labels=tp + fn)


def unmeasured(windows: Sequence[DecisionWindow], start_threshold: float, *,
               adopt_anyway: bool = False) -> Verdict:
    """The verdict when the decisions are too few to measure a fine-tune out of fold: not adopted unless
    ``adopt_anyway``."""
    leads = [lead for w in windows for lead in w.own]
    confirmed = sum(lead.decision == CONFIRMED for lead in leads)
    why = (f"too few decisions to check it ({confirmed} confirmed, {len(leads) - confirmed} rejected; at "
           f"least {MIN_EACH} of each and decisions in both folds of the checkerboard are needed)")
    reason = (f"fine-tune adopted with {OVERRIDE}, unchecked: {why}" if adopt_anyway else
              f"fine-tune NOT adopted: {why}; the bundle written is the one started from (its weights and "
              f"threshold); {OVERRIDE} keeps an unchecked fine-tune")
    return Verdict(adopted=adopt_anyway, forced=adopt_anyway, reason=reason, leads=len(leads), tuned=None,
                   start=None, tuned_threshold=None, start_threshold=start_threshold)


def check(
    init: LoadedBundle, windows: Sequence[DecisionWindow], tuned: Sequence[ScoredLead] | None,
    config: TrainConfig, *, adopt_anyway: bool = False,
) -> Verdict:
    """The guard's verdict on a fine-tune of ``init`` whose out-of-fold scores of the windows' decided
    leads are ``tuned`` (None when the decisions were too few to cross-fit)."""
    if tuned is None:
        return unmeasured(windows, init.card.threshold, adopt_anyway=adopt_anyway)
    floor = init.card.threshold
    threshold, _ = choose_on_decisions(tuned, floor)
    started = time.perf_counter()
    start = score_leads(init.model, init.card, windows, config)
    verdict = judge(tuned, threshold, start, floor, adopt_anyway=adopt_anyway)
    return dataclasses.replace(verdict, seconds=round(time.perf_counter() - started, 2))


def check_on_scenes(
    init: LoadedBundle, tuned: Figures, tuned_threshold: float, scenes: list[TrainingScene],
    config: TrainConfig, *, adopt_anyway: bool = False,
) -> Verdict:
    """The guard's verdict on a fine-tune of ``init`` measured on labelled validation scenes (``tuned``:
    its figures there at the threshold chosen there): ``init`` is measured on them at its own."""
    started = time.perf_counter()
    theirs = measure_card(init.model, init.card, scenes, config)
    where = f"on the validation scenes {[s.id for s in scenes]!r} ({theirs.n_labels} labelled sites)"
    verdict = compare(tuned, f"at its threshold {tuned_threshold:.3f} (chosen there)", theirs,
                      init.card.threshold, where, adopt_anyway=adopt_anyway)
    return dataclasses.replace(verdict, tuned_threshold=tuned_threshold,
                               seconds=round(time.perf_counter() - started, 2))


def kept_card(init: LoadedBundle, verdict: Verdict, tried_on: Sequence[dict[str, Any]]) -> ModelCard:
    """The starting bundle's card, saying the fine-tune on ``tried_on`` (the reviewed runs' provenance:
    ledger heads and counts, no site) was not adopted and why."""
    split = {**init.card.split, "fine_tune": {**verdict.to_dict(), "tried_on": list(tried_on),
                                              "kept": {"sha256": init.sha256, "name": init.card.name}}}
    return dataclasses.replace(init.card, split=split)


def keep_start(
    init: LoadedBundle, out: Path, verdict: Verdict, tried_on: Sequence[dict[str, Any]]
) -> LoadedBundle:
    """Write the starting bundle's weights and threshold to ``out`` with :func:`kept_card`; loaded back."""
    log.warning("%s", verdict.reason)
    save_bundle(out, init.model, kept_card(init, verdict, tried_on))
    return load_bundle(out)
