"""The risk bands' fills are told apart at a glance: distances between what the eye sees, not hex codes.

Each band is drawn at :data:`RISK_OPACITY` over the page's background; the test blends them the way the
browser does and measures CIEDE2000 (coloraide) between the background and "low", and between each band
and the next. A distance of about 10 is a clear difference side by side; 15 is asked for, because cells
are judged across the map, not side by side. The darkest band must also stand out from the background
by the WCAG 2.1 contrast asked of graphics (3:1).
"""

from __future__ import annotations

import pytest
from coloraide import Color

from fieldtruth.maps.layers import MAP_BACKGROUND, RISK_COLOURS, RISK_OPACITY, RISK_OPACITY_OVER_IMAGERY

BANDS = ("low", "medium", "high")
MIN_DELTA_E = 15.0


def _seen(fill: str, opacity: float, background: str = MAP_BACKGROUND) -> Color:
    top, under = Color(fill).convert("srgb"), Color(background).convert("srgb")
    return Color(
        "srgb", [opacity * a + (1 - opacity) * b for a, b in zip(top.coords(), under.coords(), strict=True)]
    )


def test_adjacent_bands_differ_at_a_glance() -> None:
    seen = [Color(MAP_BACKGROUND), *(_seen(RISK_COLOURS[b], RISK_OPACITY) for b in BANDS)]
    names = ("background", *BANDS)
    for i in range(len(seen) - 1):
        delta = seen[i].delta_e(seen[i + 1], method="2000")
        assert delta >= MIN_DELTA_E, f"{names[i]} and {names[i + 1]} are {delta:.1f} apart (CIEDE2000)"
    assert Color(MAP_BACKGROUND).contrast(seen[-1], method="wcag21") >= 3.0


def test_the_old_palette_would_fail() -> None:
    """The check is not vacuous: the fills before issue 17 ("medium" hard to tell from "low") fail it."""
    old = {"low": "#fee8c8", "medium": "#fdbb84", "high": "#e34a33"}
    low, medium = _seen(old["low"], 0.35), _seen(old["medium"], 0.35)
    assert low.delta_e(medium, method="2000") < MIN_DELTA_E


@pytest.mark.parametrize("background", ["#2b2b2b", "#6f7f5a", "#c8c2b0"])  # dark, vegetated, bright imagery
def test_bands_stay_apart_over_imagery(background: str) -> None:
    seen = [_seen(RISK_COLOURS[b], RISK_OPACITY_OVER_IMAGERY, background) for b in BANDS]
    assert min(seen[i].delta_e(seen[i + 1], method="2000") for i in range(2)) >= 8.0
