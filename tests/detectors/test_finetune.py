"""Fine-tuning settings and the threshold chosen on decisions (no training here: see the pipelines tests)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from rasterio.coords import BoundingBox

from fieldtruth.detectors.bundle import LoadedBundle
from fieldtruth.detectors.config import TrainConfig
from fieldtruth.detectors.data import ChipDataset
from fieldtruth.detectors.decisions import DecidedLead, DecisionWindow, training_scenes
from fieldtruth.detectors.errors import TrainingError
from fieldtruth.detectors.finetune import (
    ScoredLead,
    check_init,
    choose_on_decisions,
    config_from_bundle,
    enough_for_crossfit,
    with_predicted_sizes,
)
from fieldtruth.detectors.fit import focal_loss


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


def test_a_decided_leads_size_is_positive() -> None:
    with pytest.raises(ValueError, match=r"size_px .*\(0\.0, 4\.0\)"):
        DecidedLead(0.0, 0.0, "vessel", "confirmed", (0.0, 4.0))


def test_the_focal_loss_ignores_cells_below_zero() -> None:
    target = torch.full((1, 1, 8, 8), -1.0)
    target[0, 0, 2:5, 2:5] = 0.5
    target[0, 0, 3, 3] = 1.0
    logits = torch.zeros(1, 1, 8, 8, requires_grad=True)
    loss = focal_loss(logits, target)
    loss.backward()
    assert logits.grad[0, 0, 6, 6] == 0 and logits.grad[0, 0, 0, 0] == 0 and logits.grad[0, 0, 2, 2] != 0
    far = torch.zeros(1, 1, 8, 8)
    far[0, 0, 6:, 6:] = 9.0  # a confident detection where nothing is known costs nothing
    assert focal_loss(far, target) == pytest.approx(loss.item())
    assert focal_loss(far, target.clamp(min=0)) > loss.item() + 1  # ... and costs when taught as background


def test_partial_labels_supervise_only_around_the_decisions() -> None:
    leads = [DecidedLead(125.0, -125.0, "vessel", "confirmed", (6.0, 4.0)),
             DecidedLead(305.0, -305.0, "vessel", "rejected")]
    window = dataclasses.replace(_window((0, 0), leads), data=np.ones((4, 40, 40), np.float32),
                                 valid=np.ones((40, 40), bool), neighbourhood_px=5.0)
    scene = training_scenes([window])[0]
    assert scene.labels[0].geometry.bounds == pytest.approx((10.5, 9.5, 14.5, 15.5))  # its own size
    assert scene.supervised[12, 12] and scene.supervised[30, 30] and not scene.supervised[21, 21]
    assert not scene.supervised[12, 18] and scene.supervised.sum() == pytest.approx(2 * np.pi * 25, rel=0.1)
    dataset = ChipDataset([scene], classes=("vessel",), norm=((0.0,) * 4, (1.0,) * 4), chip_size=40,
                          length=1, stride=4, positive_fraction=1.0)
    _, heat, _, _ = dataset[0]
    assert heat.max() == 1.0 and heat[0, 3, 3] > 0 and heat[0, 5, 5] == -1.0 and 0 <= heat[0, 7, 7] < 1e-6
    assert training_scenes([dataclasses.replace(window, neighbourhood_px=None)])[0].supervised is None


class _SizedModel(torch.nn.Module):
    """A detector whose size head says (2 + row cell, 3 + col cell) pixels everywhere."""

    def forward(self, x: torch.Tensor) -> SimpleNamespace:
        cells = -(-x.shape[-1] // 4)
        rows = torch.arange(cells, dtype=torch.float32)[:, None].expand(cells, cells)
        size = torch.stack([torch.log(2 + rows), torch.log(3 + rows.T)])[None]
        return SimpleNamespace(heatmap=torch.zeros(1, 1, cells, cells), size=size)


@pytest.mark.slow  # the trained fixture (its card)
def test_confirmed_leads_take_the_bundles_predicted_size(trained) -> None:
    bundle: LoadedBundle = trained[0]
    leads = [DecidedLead(205.0, -285.0, "vessel", "confirmed"),
             DecidedLead(405.0, -405.0, "vessel", "rejected")]
    window = dataclasses.replace(_window((0, 0), leads), data=np.full((4, 64, 64), 500.0, np.float32),
                                 valid=np.ones((64, 64), bool))
    assert with_predicted_sizes(bundle, [window]) == [window]  # no size head: nothing to take
    (sized,) = with_predicted_sizes(dataclasses.replace(bundle, model=_SizedModel(), runner=None), [window])
    assert sized.own[0].size_px == pytest.approx((2 + 7, 3 + 5)) and sized.own[1].size_px is None
    assert sized.inside == sized.own  # the same leads: cross-fitting still hides them
    assert training_scenes([sized])[0].labels[0].geometry.bounds == pytest.approx((16.5, 24, 24.5, 33))
