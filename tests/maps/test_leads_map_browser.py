"""Open the leads map in a real headless Chromium: markers drawn, zero network requests, no errors.

Uses Debian's ``/usr/bin/chromium`` through Playwright (no browser download); skips when absent.
The screenshots land in ``tests/artifacts/`` (git-ignored) for a human to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldtruth.maps.leads import build_leads_map
from fieldtruth.review.ledger import Ledger
from fieldtruth.tests.data.runfolder import make_run_folder

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"),
]


def _open(page_path: Path, screenshot: Path) -> dict:
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package")
    result = {"requests": [], "errors": [], "console": []}
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})

            def route(r):  # noqa: ANN001 - playwright Route
                if r.request.url.startswith("file://"):
                    r.continue_()
                else:
                    result["requests"].append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.on("console", lambda m: result["console"].append((m.type, m.text)))
            page.on("pageerror", lambda e: result["errors"].append(str(e)))
            page.on("requestfailed", lambda r: result["console"].append(("requestfailed", r.url)))
            page.goto(page_path.as_uri(), wait_until="load")
            page.wait_for_timeout(500)
            result["leads"] = page.locator("path.ft-lead").count()
            result["by_status"] = {
                s: page.locator(f"path.ft-status-{s}").count()
                for s in ("unverified", "confirmed", "rejected", "field_visit")
            }
            result["nocov_labels"] = page.locator(".ft-nocov-label").count()
            result["banner"] = page.locator(".ft-banner").inner_text()
            page.locator("path.ft-status-confirmed").first.click(force=True)
            page.wait_for_timeout(300)
            result["popup"] = page.locator(".leaflet-popup-content").inner_text()
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot))
        finally:
            browser.close()
    return result


def test_restricted_map_in_chromium(tmp_path: Path) -> None:
    run = make_run_folder(tmp_path / "run", seed=1, hostile=True)
    with Ledger.open(run.path / "review.sqlite") as ledger:
        ledger.register_sites(run.path / "detections.parquet")
        ledger.decide("site-0000", "confirmed", "imagery", "rv07", note="kiln ring and chimney visible")
        ledger.decide("site-0003", "rejected", "imagery", "rv07")
        ledger.decide("site-0006", "field_visit", "imagery", "rv07")
    out = build_leads_map(run.path)
    result = _open(out, ARTIFACTS / "leads_restricted.png")
    assert result["requests"] == []
    assert result["errors"] == []
    assert [c for c in result["console"] if c[0] in ("error", "requestfailed")] == []
    assert result["leads"] == len(run.detections)
    assert result["by_status"] == {"unverified": 17, "confirmed": 1, "rejected": 1, "field_visit": 1}
    assert result["nocov_labels"] >= 1
    assert "every point is a lead, not a finding" in result["banner"]
    # The hostile scene id of site-0000 shows as text in the popup, never as markup.
    assert "<img src=x onerror=alert(1)>" in result["popup"]
    assert "fieldtruth review decide" in result["popup"]


def test_shared_map_in_chromium(tmp_path: Path) -> None:
    run = make_run_folder(tmp_path / "run", n=60, seed=2)
    out = build_leads_map(run.path, tier="shared")
    sync_api = pytest.importorskip("playwright.sync_api")
    requests: list[str] = []
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.route(
            "**/*",
            lambda r: (
                r.continue_()
                if r.request.url.startswith("file://")
                else (requests.append(r.request.url), r.abort())
            ),
        )
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(out.as_uri(), wait_until="load")
        page.wait_for_timeout(300)
        leads = page.locator("path.ft-lead").count()
        shapes = page.locator("path.leaflet-interactive").count()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "leads_shared.png"))
        browser.close()
    assert requests == [] and errors == []
    assert leads == 0 and shapes > len(run.coverage)  # coverage tiles plus at least one cell
