"""Open the maps in a real headless Chromium: decrypt, markers and cells drawn, no request, no script.

Uses Debian's ``/usr/bin/chromium`` through Playwright (no browser download); skips when absent.
Screenshots land in ``tests/artifacts/`` (git-ignored) for a human to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldtruth.maps.leads import build_leads_map
from fieldtruth.review.ledger import Ledger
from fieldtruth.tests.data.browser import CHROMIUM, CHROMIUM_ARGS
from fieldtruth.tests.data.runfolder import HOSTILE
from fieldtruth.tests.maps.test_leads_fixture import HOSTILE_JS, make_map_run

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PASS = "correct horse battery staple"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    run = make_map_run(tmp_path_factory.mktemp("maps") / "run", hostile=True)
    with Ledger.open(run.path / "review.sqlite") as ledger:
        ledger.register_sites(run.path / "detections.parquet")
        ledger.decide("site-0000", "confirmed", "imagery", "rv07", note="kiln ring visible")
        ledger.decide("site-0003", "rejected", "imagery", "rv07")
        ledger.decide("site-0006", "field_visit", "imagery", "rv07")
    return run


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser, path: Path, passphrase: str | None = None, wait_ready: bool = True):  # noqa: ANN001
    seen = {"requests": [], "errors": [], "dialogs": []}
    page = browser.new_page(viewport={"width": 1280, "height": 860})

    def route(r):  # noqa: ANN001 - playwright Route
        if r.request.url.startswith("file://") or r.request.url.startswith("data:"):
            r.continue_()
        else:
            seen["requests"].append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on(
        "request", lambda r: None if r.url.startswith(("file:", "data:")) else seen["requests"].append(r.url)
    )
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.goto(path.as_uri(), wait_until="load")
    if passphrase is not None:
        page.fill("#ft-pass", passphrase)
        page.click("#ft-unlock button")
    if wait_ready:
        page.wait_for_selector("body[data-ft-ready]", timeout=10_000)
    return page, seen


def test_encrypted_restricted_map(run, browser, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIELDTRUTH_PASSPHRASE", PASS)
    out = build_leads_map(run.path, chip_px=32)
    page, seen = _open(browser, out, wait_ready=False)
    assert page.locator("#ft-unlock").is_visible() and page.locator("path.ft-lead").count() == 0
    page.fill("#ft-pass", PASS)
    page.click("#ft-unlock button")
    page.wait_for_selector("body[data-ft-ready]", timeout=10_000)
    assert page.locator("path.ft-lead").count() == len(run.detections)
    assert page.locator("path.ft-status-confirmed").count() == 1
    assert page.locator("path.ft-status-field_visit").count() == 1
    assert page.locator("path.ft-cell").count() == 64
    assert page.locator("path.ft-sector").count() == 3
    assert page.locator(".ft-nocov-label").count() >= 1
    assert page.locator("img.ft-quicklook").count() == 1
    legend = page.locator("#ft-legend").inner_text()
    assert "Imagery dates: 2026-01-15/2026-03-15" in legend and "Model card" in legend
    assert "every point is a lead, not a finding" in page.locator(".ft-banner").inner_text()
    page.locator("path.ft-status-confirmed").first.click(force=True)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=3000)
    popup.locator("details summary").click()  # the command line, folded under the decide button
    text = popup.inner_text()
    assert "fieldtruth review decide run site-0000" in text and "--reviewer" in text
    assert "tested precision" in text and ("0.86" in text or "0.81" in text)
    assert HOSTILE in text  # the hostile scene id shows as text
    assert popup.locator("img.ft-chip").count() == 1
    page.wait_for_timeout(400)  # let the popup fade in before the screenshot
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "map_restricted.png"))
    page.close()
    assert seen == {"requests": [], "errors": [], "dialogs": []}


def test_hostile_strings_stay_text(run, browser) -> None:
    out = build_leads_map(
        run.path, run.path / "maps" / "plain.html", encrypt=False, chip_px=0, quicklook_px=0
    )
    page, seen = _open(browser, out)
    texts = []
    for selector in ("path.ft-lead", "path.ft-sector"):
        for i in range(page.locator(selector).count()):
            page.evaluate(
                "() => { const S = window.FTMap; S.map.closePopup(); S.map.fitBounds(S.P.bounds, "
                "{animate: false}); }"
            )  # each lead where it was, no popup over it
            page.locator(selector).nth(i).dispatch_event("click")  # on the lead, whatever fades out over it
            texts.append(page.locator(".leaflet-popup-content").last.inner_text())
    page.locator("#ft-legend details summary").click()
    texts.append(page.locator("body").inner_text())
    shown = "\n".join(texts)
    assert "NOT ENCRYPTED" in shown
    for hostile in (HOSTILE, HOSTILE_JS, "site-0002" + HOSTILE):
        assert hostile in shown  # shown as text, character for character
    assert page.locator("img:not(.ft-chip):not(.ft-quicklook), .leaflet-popup-content script").count() == 0
    assert page.locator("script").count() == 5
    page.close()
    assert seen["dialogs"] == [] and seen["errors"] == [] and seen["requests"] == []


def test_wrong_passphrase_shows_error_only(run, browser) -> None:
    out = build_leads_map(run.path, run.path / "maps" / "w.html", passphrase=PASS, chip_px=0, quicklook_px=0)
    page, seen = _open(browser, out, passphrase="not the passphrase", wait_ready=False)
    page.locator("#ft-error", has_text="Wrong passphrase").wait_for(timeout=10_000)
    assert page.locator("#ft-map").is_hidden() and page.locator("#ft-legend").is_hidden()
    assert page.locator("path, .leaflet-container").count() == 0
    assert "site-0000" not in page.content()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "map_wrong_passphrase.png"))
    page.close()
    assert seen == {"requests": [], "errors": [], "dialogs": []}


def test_shared_map_in_chromium(run, browser) -> None:
    out = build_leads_map(run.path, tier="shared")
    page, seen = _open(browser, out)
    n_shared = int((run.path / "risk_shared.geojson").read_text().count('"Feature"'))
    assert page.locator("path.ft-cell").count() == n_shared > 0
    assert page.locator("path.ft-lead, path.ft-sector, img").count() == 0
    assert "Imagery dates" in page.locator("#ft-legend").inner_text()
    towns = page.locator(".ft-town-label").all_inner_texts()
    assert "Naugachhia" in towns and all(t.strip() for t in towns)
    for site in run.detections["site_id"]:
        assert site not in page.content()
    page.screenshot(path=str(ARTIFACTS / "map_shared.png"))
    page.close()
    assert seen == {"requests": [], "errors": [], "dialogs": []}


def test_hostile_label_in_layer_names(run, browser) -> None:
    """The risk tooltip with a hostile explanation is shown as text when hovered."""
    out = build_leads_map(run.path, run.path / "maps" / "p2.html", encrypt=False, chip_px=0, quicklook_px=0)
    page, seen = _open(browser, out)
    page.evaluate("""() => { const l = document.querySelectorAll('path.ft-cell');
        l[0].dispatchEvent(new MouseEvent('mouseover', {bubbles: true})); }""")
    page.wait_for_selector(".leaflet-tooltip", timeout=3000)
    tips = page.locator(".leaflet-tooltip").all_inner_texts()
    assert any(HOSTILE in t for t in tips) or any(HOSTILE_JS.split(" ")[0] in t for t in tips)
    page.close()
    assert seen["dialogs"] == [] and seen["errors"] == []
