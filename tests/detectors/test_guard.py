"""The do-no-harm guard's verdict on a fine-tune (figures given; the trained cases are in the pipelines
tests)."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.coords import BoundingBox

from fieldtruth.detectors.decisions import DecidedLead, DecisionWindow
from fieldtruth.detectors.finetune import ScoredLead
from fieldtruth.detectors.guard import crossfit_figures, judge, unmeasured

#: Six decided leads as the starting bundle scores them: all above its threshold 0.3 (they are its
#: leads), three confirmed -> at its threshold precision 0.5, recall 1, F1 0.667.
START = [ScoredLead(True, s) for s in (0.9, 0.6, 0.4)] + [ScoredLead(False, s) for s in (0.8, 0.5, 0.35)]


def test_a_fine_tune_that_loses_confirmed_leads_is_not_adopted() -> None:
    tuned = [ScoredLead(True, s) for s in (0.5, 0.2, 0.1)] + [ScoredLead(False, s) for s in (0.3, 0.1, 0.1)]
    verdict = judge(tuned, 0.3, START, 0.3)
    assert not verdict.adopted and not verdict.forced
    assert verdict.tuned.f1 == pytest.approx(0.4) and verdict.start.f1 == pytest.approx(0.6667)
    assert "NOT adopted" in verdict.reason and "F1 0.400" in verdict.reason and "0.667" in verdict.reason
    assert "--adopt-anyway" in verdict.reason and verdict.leads == 6
    forced = judge(tuned, 0.3, START, 0.3, adopt_anyway=True)
    assert forced.adopted and forced.forced and "with --adopt-anyway although it does worse" in forced.reason


def test_a_fine_tune_that_drops_rejected_leads_is_adopted() -> None:
    tuned = [ScoredLead(True, s) for s in (0.9, 0.7, 0.5)] + [ScoredLead(False, s) for s in (0.4, 0.2, 0.1)]
    verdict = judge(tuned, 0.45, START, 0.3)
    assert verdict.adopted and not verdict.forced and verdict.tuned.f1 == 1.0
    assert verdict.reason.startswith("fine-tune adopted:")
    assert verdict.to_dict()["tuned"]["fp"] == 0 and verdict.to_dict()["start"]["fp"] == 3


def test_a_tie_is_adopted() -> None:  # no worse on what can be measured
    assert judge(START, 0.3, START, 0.3).adopted


def test_both_sides_must_hold_the_same_leads() -> None:
    with pytest.raises(ValueError, match="5 decided leads and the starting bundle on 6"):
        judge(START[1:], 0.3, START, 0.3)
    with pytest.raises(ValueError, match="not the same confirmed and rejected"):
        judge(START, 0.3, [*START[:5], ScoredLead(True, 0.35)], 0.3)  # a rejected lead became confirmed


def test_too_few_decisions_keep_the_start_unless_told() -> None:
    leads = [DecidedLead(5.0, -5.0, "vessel", "confirmed"), DecidedLead(6.0, -6.0, "vessel", "rejected")]
    window = DecisionWindow((0, 0), "w", BoundingBox(0.0, -10.0, 10.0, 0.0), 1.0,
                            np.zeros((4, 10, 10), np.float32), np.ones((10, 10), bool), tuple(leads),
                            tuple(leads), 3.0)
    verdict = unmeasured([window], 0.25)
    assert not verdict.adopted and verdict.tuned is None and verdict.start_threshold == 0.25
    assert "too few decisions to check it (1 confirmed, 1 rejected" in verdict.reason
    anyway = unmeasured([window], 0.25, adopt_anyway=True)
    assert anyway.adopted and anyway.forced and "unchecked" in anyway.reason


def test_crossfit_figures_choose_each_folds_threshold_on_the_other() -> None:
    tuned = [ScoredLead(True, 0.9, 0), ScoredLead(False, 0.6, 0), ScoredLead(True, 0.7, 1),
             ScoredLead(False, 0.8, 1)]
    figures = crossfit_figures(tuned, 0.3)
    # fold 1 chooses 0.7 (keeps its confirmed lead, drops nothing above it): applied to fold 0 keeps 0.9
    # only; fold 0 chooses 0.9: fold 1 keeps nothing (0.8 and 0.7 under it)
    assert (figures.tp, figures.fp, figures.fn) == (1, 0, 1)
    assert crossfit_figures([ScoredLead(True, 0.9)], 0.3) is None  # folds unknown


def test_the_verdict_follows_the_threshold_chosen_on_the_other_fold() -> None:
    # at 0.7, chosen on all four, the fine-tune keeps both confirmed leads and one rejected: F1 0.8, above
    # the start's 0.667; with each fold's threshold from the other fold it finds one of two: F1 0.667 ...
    tuned = [ScoredLead(True, 0.9, 0), ScoredLead(False, 0.6, 0), ScoredLead(True, 0.7, 1),
             ScoredLead(False, 0.8, 1)]
    start = [ScoredLead(True, 0.5), ScoredLead(True, 0.5), ScoredLead(False, 0.5), ScoredLead(False, 0.5)]
    verdict = judge(tuned, 0.7, start, 0.3)
    assert verdict.tuned_shipped.f1 == 0.8 and verdict.tuned == crossfit_figures(tuned, 0.3)
    assert verdict.tuned.f1 == pytest.approx(0.6667) and verdict.start.f1 == pytest.approx(0.6667)
    assert verdict.adopted and "each fold's threshold chosen on the other fold" in verdict.reason
    # ... and a start that keeps the confirmed leads only beats that, though not the shipped figure
    better = [ScoredLead(True, 0.5), ScoredLead(True, 0.5), ScoredLead(False, 0.5), ScoredLead(False, 0.1)]
    verdict = judge(tuned, 0.7, better, 0.3)
    assert verdict.start.f1 == 0.8 and not verdict.adopted and verdict.to_dict()["tuned_shipped"]["f1"] == 0.8
