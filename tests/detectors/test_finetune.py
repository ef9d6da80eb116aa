"""Fine-tuning settings and the threshold chosen on decisions (no training here: see the pipelines tests)."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.coords import BoundingBox

from fieldtruth.detectors.bundle import LoadedBundle
from fieldtruth.detectors.config import TrainConfig
from fieldtruth.detectors.decisions import DecidedLead, DecisionWindow, training_scenes
from fieldtruth.detectors.errors import TrainingError
from fieldtruth.detectors.finetune import (
    ScoredLead,
    check_init,
    choose_on_decisions,
    config_from_bundle,
    enough_for_crossfit,
)


def test_threshold_separates_confirmed_from_rejected() -> None:
    scored = [ScoredLead(True, s) for s in (0.9, 0.8, 0.7)] + [ScoredLead(False, s) for s in (0.4, 0.3)]
    threshold, figures = choose_on_decisions(scored)
    assert threshold == pytest.approx(0.7) and figures.f1 == 1.0 and figures.tp == 3 and figures.fp == 0
    assert figures.ap == 1.0


def test_threshold_never_below_the_floor() -> None:
    scored = [ScoredLead(True, 0.1), ScoredLead(True, 0.6), ScoredLead(False, 0.08)]
    assert choose_on_decisions(scored)[0] == pytest.approx(0.1)
    threshold, figures = choose_on_decisions(scored, floor=0.3)
    assert threshold == pytest.approx(0.3) and figures.tp == 1 and figures.fn == 1


def test_a_lead_the_model_misses_counts_as_missed() -> None:
    _, figures = choose_on_decisions([ScoredLead(True, 0.0), ScoredLead(True, 0.7), ScoredLead(False, 0.2)])
    assert figures.recall == 0.5 and figures.ap == 0.5


def test_no_decision_is_refused() -> None:
    with pytest.raises(TrainingError, match="no decided lead"):
        choose_on_decisions([])


@pytest.mark.slow  # the trained fixture
def test_init_takes_the_bundles_settings_and_refuses_others(trained) -> None:
    bundle: LoadedBundle = trained[0]
    config = config_from_bundle(TrainConfig.vessels(), bundle)
    assert config.architecture == bundle.card.architecture and config.bands == bundle.card.bands
    assert config.classes == bundle.card.classes and config.ensemble == 1 and config.scene_offset == {}
    check_init(bundle, {"bands": list(bundle.card.bands), "steps": 5}, "config")  # repeating is fine
    with pytest.raises(TrainingError, match=r"config sets bands \['nir', 'red'\].*drop the setting"):
        check_init(bundle, {"bands": ["nir", "red"]}, "config")
    with pytest.raises(TrainingError, match="sets architecture 'ensemble'"):
        check_init(bundle, {"architecture": "ensemble"}, "config")


def _window(cell: tuple[int, int], leads: list[DecidedLead]) -> DecisionWindow:
    bounds = BoundingBox(cell[1] * 100.0, -100.0 - cell[0] * 100.0, cell[1] * 100.0 + 100.0, -cell[0] * 100.0)
    return DecisionWindow(cell, f"w{cell}", bounds, 10.0, np.zeros((4, 10, 10), np.float32),
                          np.ones((10, 10), bool), tuple(leads), tuple(leads), 3.0)


def test_crossfitting_hides_the_held_out_decisions() -> None:
    a = [DecidedLead(25.0, -25.0, "vessel", "confirmed"), DecidedLead(55.0, -55.0, "vessel", "rejected")]
    b = [DecidedLead(125.0, -25.0, "vessel", "confirmed")]
    windows = [_window((0, 0), a), _window((0, 1), b)]
    scenes = training_scenes(windows)
    assert [len(s.labels) for s in scenes] == [1, 1] and scenes[0].negatives == [(5.5, 5.5)]
    assert scenes[0].labels[0].centre == pytest.approx((2.5, 2.5))
    assert [s.id for s in training_scenes(windows, frozenset({(0, 1)}))] == ["w(0, 0)"]
    assert not enough_for_crossfit(windows)  # fewer than three of each
    many = [_window((i, j), [DecidedLead(j * 100.0 + 5, -i * 100.0 - 5, "vessel", d)])
            for i, j, d in [(0, 0, "confirmed"), (0, 1, "confirmed"), (1, 1, "confirmed"),
                            (1, 0, "rejected"), (2, 0, "rejected"), (2, 1, "rejected")]]
    assert enough_for_crossfit(many)


def test_a_decided_lead_is_confirmed_or_rejected() -> None:
    with pytest.raises(ValueError, match="'uncertain'"):
        DecidedLead(0.0, 0.0, "vessel", "uncertain")
