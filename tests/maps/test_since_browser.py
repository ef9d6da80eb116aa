"""The restricted map of a later run in headless Chromium: carried decisions and the "new since" control."""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldtruth.maps.leads import build_leads_map
from fieldtruth.pipelines.sitelinks import carry_forward
from fieldtruth.review.ledger import Ledger
from fieldtruth.tests.data.browser import CHROMIUM
from fieldtruth.tests.data.region import DATES, write_run
from fieldtruth.tests.maps.test_decide_browser import _context, _watch
from fieldtruth.tests.maps.test_leads_map_browser import ARTIFACTS, browser  # noqa: F401

D1, D2, _ = DATES
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def later(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, int]:
    root = tmp_path_factory.mktemp("since")
    first = write_run(root / "run1", D1, 0).set_index("truth")
    confirmed = str(first.loc["always", "site_id"])
    with Ledger.of_run(root / "run1") as ledger:
        ledger.decide(confirmed, "confirmed", "imagery", "rv07")
    second = write_run(root / "run2", D2, 1)
    carry_forward(root / "run2", [root / "run1"], D2, 50.0)
    new_since_d1 = int((second["truth"] == "added-d2").sum())
    return root / "run2", confirmed, new_since_d1


@pytest.mark.parametrize(("width", "height"), [(1280, 860), (390, 844)])
def test_new_since_filters_the_leads_and_the_carried_decision_shows(later, browser, width: int,  # noqa: F811
                                                                   height: int) -> None:
    run, confirmed, new_since_d1 = later
    out = build_leads_map(run, run / "maps" / f"since-{width}.html", encrypt=False, chip_px=0, quicklook_px=0)
    ctx, seen = _context(browser, {"width": width, "height": height})
    page = ctx.new_page()
    _watch(page, seen)
    page.goto(out.as_uri(), wait_until="load")
    page.wait_for_selector("body[data-ft-ready]", timeout=10_000)
    total = page.locator("path.ft-lead").count()
    assert total > new_since_d1 > 0 and page.locator("path.ft-status-confirmed").count() == 1
    pick = page.locator("select#ft-since")
    box = pick.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= width and box["y"] + box["height"] <= height
    search = page.locator("#ft-search").bounding_box()
    assert search and box["y"] >= search["y"] + search["height"]  # under the search box, not over it
    pick.select_option(D1)
    assert page.locator("path.ft-lead").count() == new_since_d1
    assert f"{new_since_d1} lead(s) first seen after {D1}" in page.locator(".ft-since").inner_text()
    pick.select_option("")
    assert page.locator("path.ft-lead").count() == total
    page.evaluate(f"() => window.FTMap.markers[{confirmed!r}].fire('click')")
    text = page.locator(".leaflet-popup-content").inner_text()
    assert f"first seen\t{D1}" in text, text
    assert "earlier decision" in text and "confirmed in run1 (1 decision(s)" in text and "rv07" not in text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"map_since_{width}.png"))
    ctx.close()
    assert seen == {"requests": [], "errors": []}
