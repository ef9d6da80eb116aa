"""Decide on the map, on a phone, offline, and bring the decisions back: Chromium end to end.

A 390 x 844 phone opens the encrypted restricted map, types the passphrase, finds sites with the search
box, records three decisions (one with a position from a mocked geolocation, one with a photo fingerprint
of a file picked here, one with an edited visit time and the reviewer id typed in capitals), reloads the
page offline and finds them kept, corrects one, exports the decisions file, and `fieldtruth review
import` records exactly those three with their visit times, the position and the canonical reviewer id;
`review verify` passes and the map drawn again shows the new statuses. The page's reviewer-id rule is
compared with the ledger's on every Unicode character.
The layout figures are measured from the page (what the topmost element is at each point of a 6 px
grid), never by eye; screenshots land in ``tests/artifacts/``.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from datetime import datetime, timedelta, timezone
from pathlib import Path

import geopandas as gpd
import pytest
from click.testing import CliRunner

from fieldtruth.maps.leads import build_leads_map
from fieldtruth.pipelines.cli import cli
from fieldtruth.review.errors import InvalidDecisionError
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.rules import validate_reviewer
from fieldtruth.tests.data.browser import CHROMIUM, CHROMIUM_ARGS
from fieldtruth.tests.maps.test_leads_fixture import make_map_run
from fieldtruth.tests.maps.test_leads_map_browser import ARTIFACTS, PASS

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}
WHERE = {"latitude": 25.4412, "longitude": 86.9821, "accuracy": 12}
MAP_SHARE = """() => {
  const root = document.getElementById('ft-map'); let map = 0, all = 0;
  for (let y = 3; y < innerHeight; y += 6) for (let x = 3; x < innerWidth; x += 6) {
    all++; const e = document.elementFromPoint(x, y);
    if (e && root.contains(e) && !e.closest('.leaflet-control-container, .leaflet-popup')) { map++; }
  }
  return map / all;
}"""
ON_TOP = """(sel) => { const e = document.querySelector(sel), r = e.getBoundingClientRect();
  return [[r.left + 2, r.top + 2], [r.right - 2, r.top + 2], [r.left + 2, r.bottom - 2],
          [r.right - 2, r.bottom - 2], [(r.left + r.right) / 2, (r.top + r.bottom) / 2]]
    .filter(([x, y]) => document.elementFromPoint(x, y) !== e)
    .map(([x, y]) => [x, y, document.elementFromPoint(x, y).outerHTML.slice(0, 80)]); }"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _context(browser, viewport: dict, **kw):  # noqa: ANN001, ANN202 - playwright objects
    ctx = browser.new_context(viewport=viewport, timezone_id="Asia/Kolkata", accept_downloads=True, **kw)
    seen = {"requests": [], "errors": []}
    ctx.route(
        "**/*",
        lambda r: (
            r.continue_()
            if r.request.url.startswith(("file:", "data:", "blob:"))
            else (seen["requests"].append(r.request.url), r.abort())
        ),
    )
    return ctx, seen


def _watch(page, seen: dict) -> None:  # noqa: ANN001
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))


def _unlock(page) -> None:  # noqa: ANN001
    page.fill("#ft-pass", PASS)
    page.click("#ft-unlock button")
    page.wait_for_selector("body[data-ft-ready][data-ft-decide]", timeout=15_000)


def _find(page, site: str) -> None:  # noqa: ANN001
    page.fill("#ft-search", site)
    page.press("#ft-search", "Enter")
    page.locator(".leaflet-popup-content", has_text=site).locator(".ft-decide-btn").wait_for(timeout=5000)
    page.wait_for_timeout(400)  # the popup fades in and the map pans


def _decide(page, site: str, decision: str, method: str, note: str, reviewer: str = "rv07") -> None:  # noqa: ANN001
    page.locator(".leaflet-popup-content", has_text=site).locator(".ft-decide-btn").click()
    page.check(f"#ft-decide input[name=decision][value={decision}]")
    page.check(f"#ft-decide input[name=method][value={method}]")
    page.fill("#ft-decide input[name=reviewer]", reviewer)
    page.fill("#ft-decide textarea[name=note]", note)


def _save(page) -> None:  # noqa: ANN001
    page.click("#ft-decide button[type=submit]")
    page.locator("#ft-decide").wait_for(state="hidden", timeout=5000)


def _shot(page, name: str) -> None:  # noqa: ANN001
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def _seconds(iso: str) -> str:
    """The page's ``2026-03-01T04:00:00.123Z`` as the ledger stores it (UTC, to the second)."""
    return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cli(*args: object):  # noqa: ANN202
    return CliRunner().invoke(cli, [str(a) for a in args], obj={})


def test_decide_on_a_phone_offline_and_import(browser, tmp_path: Path) -> None:
    run = make_map_run(tmp_path / "run").path
    out = build_leads_map(run, passphrase=PASS, chip_px=32)
    sites = ["site-0001", "site-0005", "site-0009"]
    photo = tmp_path / "IMG_0001.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 a field photo " * 64)
    ctx, seen = _context(
        browser, PHONE, is_mobile=True, has_touch=True, geolocation=WHERE, permissions=["geolocation"]
    )
    page = ctx.new_page()
    _watch(page, seen)
    page.goto(out.as_uri())
    _unlock(page)
    share = page.evaluate(MAP_SHARE)
    assert share >= 0.70, f"the map shows {share:.0%} of a 390 x 844 screen"
    assert (
        page.locator(".ft-banner").is_visible() and page.locator(".ft-banner").bounding_box()["height"] <= 100
    )
    assert not page.locator("#ft-legend").evaluate("e => e.open")  # folded on a phone
    _shot(page, "phone_map.png")

    _find(page, sites[0])
    _shot(page, "phone_popup.png")
    hover = ".leaflet-tooltip:not(.ft-town-label):not(.ft-nocov-label)"
    assert page.locator(hover).count() == 0, "a cell's hover box stays open beside the lead's popup"
    chip = page.locator(".leaflet-popup img.ft-chip").bounding_box()
    banner = page.locator(".ft-banner").bounding_box()
    assert chip["x"] >= 0 and chip["x"] + chip["width"] <= PHONE["width"]
    assert chip["y"] >= banner["y"] + banner["height"] and chip["y"] + chip["height"] <= PHONE["height"]
    assert page.evaluate(ON_TOP, ".leaflet-popup img.ft-chip") == [], "something covers the chip"
    geo = page.locator(".leaflet-popup .ft-where a").get_attribute("href")
    assert geo.startswith("geo:25.") and (",86.9" in geo or ",87.0" in geo)
    _decide(page, sites[0], "confirmed", "field", "kiln ring and smoke")
    page.click("#ft-pos button")
    assert "25.441200, 86.982100 (\u00b1 12 m)" in page.locator("#ft-pos .ft-pos-text").inner_text(
        timeout=5000
    )
    _shot(page, "phone_form.png")
    _save(page)

    _find(page, sites[1])
    _decide(page, sites[1], "rejected", "imagery", "a pond, not a kiln")
    page.set_input_files("#ft-photo-pick", str(photo))
    digest = hashlib.sha256(photo.read_bytes()).hexdigest()
    assert page.locator("#ft-photos .ft-hash").inner_text(timeout=5000).startswith(digest[:16])
    _save(page)

    _find(page, sites[2])
    _decide(page, sites[2], "field_visit", "other", "", reviewer=" RV07 ")  # kept as the ledger's rv07
    page.fill("#ft-decide input[name=visited]", "2026-03-01T09:30")  # Asia/Kolkata: 04:00 UTC
    _save(page)
    assert page.locator("path.ft-lead.ft-local").count() == 3
    assert "3 decided on this device" in page.locator("#ft-legend").text_content()
    assert page.locator("path.ft-status-confirmed.ft-local, path.ft-status-rejected.ft-local").count() == 2

    ctx.set_offline(True)
    page.reload()
    _unlock(page)
    assert (
        page.locator("path.ft-lead.ft-local").count() == 3
        and page.inner_text("#ft-dbutton") == "Decisions (3)"
    )
    stored = page.evaluate(
        "() => Object.keys(localStorage).map(k => k + '=' + localStorage.getItem(k)).join(' ')"
    )
    assert "fieldtruth:decisions:" in stored and not any(
        s in stored for s in [*sites, "rv07", "kiln", digest]
    )

    page.click("#ft-dbutton")  # correct one before the export
    page.locator("#ft-dlist li", has_text=sites[1]).get_by_role("button", name="Change").click()
    page.check("#ft-decide input[name=decision][value=uncertain]")
    _save(page)
    assert page.locator("path.ft-status-uncertain.ft-local").count() == 1
    page.click("#ft-dbutton")
    _shot(page, "phone_list.png")
    with page.expect_download() as download:
        page.click("#ft-export")
    exported = tmp_path / download.value.suggested_filename
    download.value.save_as(exported)
    assert exported.name.startswith("decisions-run-") and "NOT exported" not in page.inner_text("#ft-dlist")

    doc = json.loads(exported.read_text())
    assert [d["site_id"] for d in sorted(doc["decisions"], key=lambda d: d["site_id"])] == sites
    by_site = {d["site_id"]: d for d in doc["decisions"]}
    assert by_site[sites[0]]["position"] == {"lat": 25.4412, "lon": 86.9821, "accuracy_m": 12}
    assert by_site[sites[1]]["photos"] == [digest] and by_site[sites[1]]["decision"] == "uncertain"
    assert by_site[sites[2]]["visited_at"] == "2026-03-01T04:00:00.000Z"
    assert {d["reviewer"] for d in doc["decisions"]} == {"rv07"}, "the page keeps the canonical id"
    now = datetime.now(timezone.utc)
    assert abs(datetime.fromisoformat(by_site[sites[0]]["visited_at"]) - now) < timedelta(minutes=15)
    text = exported.read_text()
    for lead in gpd.read_parquet(run / "detections.parquet").geometry:
        assert f"{lead.y:.4f}" not in text and f"{lead.x:.4f}" not in text  # no lead coordinates

    res = _cli("review", "import", run, exported)
    assert res.exit_code == 0 and "recorded 3 decision(s)" in res.output, res.output
    with Ledger.of_run(run) as ledger:
        entries = list(ledger.entries())
        statuses = ledger.statuses()
    visits = {site: _seconds(d["visited_at"]) for site, d in by_site.items()}
    assert sorted((e.site_id, e.decision, e.method, e.reviewer, e.visited_at) for e in entries) == [
        (sites[0], "confirmed", "field", "rv07", visits[sites[0]]),
        (sites[1], "uncertain", "imagery", "rv07", visits[sites[1]]),
        (sites[2], "field_visit", "other", "rv07", "2026-03-01T04:00:00Z"),
    ]
    evidence = {e.site_id: e.evidence for e in entries}
    assert evidence[sites[1]]["photos"] == [digest]
    assert evidence[sites[0]]["position"] == {"lat": 25.4412, "lon": 86.9821, "accuracy_m": 12}
    assert "position" not in evidence[sites[1]] and "position" not in evidence[sites[2]]
    res = _cli("review", "verify", run)
    assert res.exit_code == 0 and "chain intact: 3 entries" in res.output
    res = _cli("review", "import", run, exported)
    assert res.exit_code == 0 and "recorded 0 decision(s)" in res.output and "3 already" in res.output

    page.click("#ft-clear")
    page.get_by_role("button", name="Yes, clear").click()
    assert page.locator("path.ft-lead.ft-local").count() == 0
    assert "fieldtruth:decisions:" not in page.evaluate("() => Object.keys(localStorage).join(' ')")
    page.close()
    ctx.close()
    assert seen == {"requests": [], "errors": []}

    again = build_leads_map(run, run / "maps" / "again.html", encrypt=False, chip_px=0, quicklook_px=0)
    ctx, seen = _context(browser, DESKTOP)
    page = ctx.new_page()
    _watch(page, seen)
    page.goto(again.as_uri())
    page.wait_for_selector("body[data-ft-ready]")
    for site, status in ((sites[0], "confirmed"), (sites[1], "uncertain"), (sites[2], "field_visit")):
        assert statuses[site] == status
        _find(page, site)  # the redrawn map says so in the site's own popup, from the ledger
        popup = page.locator(".leaflet-popup-content", has_text=site).inner_text()
        assert f"Lead - not a finding ({status.replace('_', ' ')})" in popup
    assert page.locator("path.ft-status-uncertain").count() == 1
    assert page.locator("path.ft-status-field_visit").count() == 1
    assert page.locator("path.ft-status-confirmed").count() == 1
    assert page.locator("path.ft-lead.ft-local").count() == 0, "from the ledger, not from this browser"
    ctx.close()
    assert seen == {"requests": [], "errors": []}


def test_desktop_layout_and_popup(browser, tmp_path: Path) -> None:
    run = make_map_run(tmp_path / "run").path
    cells = gpd.read_parquet(run / "risk.parquet")  # the cell of site-0004 scored "not covered"
    lead = gpd.read_parquet(run / "detections.parquet").set_index("site_id").geometry["site-0004"]
    cells.loc[cells.contains(lead), ["band", "score"]] = ["not covered", None]
    cells.to_parquet(run / "risk.parquet")
    out = build_leads_map(run, encrypt=False, chip_px=32)
    ctx, seen = _context(browser, DESKTOP)
    page = ctx.new_page()
    _watch(page, seen)
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ft-ready]")
    assert (
        page.locator("#ft-legend").evaluate("e => e.open")
        and page.locator(".leaflet-control-layers-list").is_visible()
    )
    share = page.evaluate(MAP_SHARE)
    assert share >= 0.70, f"the map shows {share:.0%} of a 1366 x 768 screen"
    _shot(page, "desktop_map.png")
    _find(page, "site-0004")
    assert page.evaluate(ON_TOP, ".leaflet-popup img.ft-chip") == []
    assert 'lies in a risk cell marked "not covered"' in page.inner_text(".leaflet-popup .ft-explain")
    _shot(page, "desktop_popup.png")
    ctx.close()
    assert seen == {"requests": [], "errors": []}


def test_without_storage_the_page_says_so_and_offers_the_export(browser, tmp_path: Path) -> None:
    """A sandboxed frame has an opaque origin and no localStorage, like some phones' file viewers."""
    run = make_map_run(tmp_path / "run").path
    out = build_leads_map(run, encrypt=False, chip_px=0, quicklook_px=0)
    wrapper = out.parent / "wrapper.html"
    wrapper.write_text(
        f'<iframe sandbox="allow-scripts allow-downloads" src="{out.name}" '
        'style="width:390px;height:800px;border:0"></iframe>'
    )
    ctx, seen = _context(browser, {"width": 420, "height": 844})
    page = ctx.new_page()
    page.goto(wrapper.as_uri())
    frame = page.frame_locator("iframe")
    frame.locator("body[data-ft-decide=nostore]").wait_for(timeout=10_000)
    frame.locator("#ft-search").fill("site-0002")
    frame.locator("#ft-search").press("Enter")
    frame.locator(".leaflet-popup-content .ft-decide-btn").click()
    frame.locator("#ft-decide input[name=decision][value=rejected]").check()
    frame.locator("#ft-decide input[name=method][value=imagery]").check()
    frame.locator("#ft-decide input[name=reviewer]").fill("rv07")
    frame.locator("#ft-decide button[type=submit]").click()
    frame.locator("#ft-dlist .ft-nostore").wait_for(timeout=5000)  # the list opens itself, with the export
    assert "no storage" in frame.locator("#ft-dlist").inner_text()
    assert frame.locator("#ft-export").is_enabled()
    ctx.close()
    assert seen["requests"] == []


def test_shared_map_on_a_phone(browser, tmp_path: Path) -> None:
    run = make_map_run(tmp_path / "run")
    out = build_leads_map(run.path, tier="shared")
    ctx, seen = _context(browser, PHONE, is_mobile=True, has_touch=True)
    page = ctx.new_page()
    _watch(page, seen)
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ft-ready]")
    share = page.evaluate(MAP_SHARE)
    assert share >= 0.70, f"the shared map shows {share:.0%} of a 390 x 844 screen"
    assert "Naugachhia" in page.locator(".ft-town-label").all_inner_texts()
    assert page.locator("path.ft-lead, #ft-search, #ft-dbutton, img.ft-chip").count() == 0
    _shot(page, "phone_shared.png")
    ctx.close()
    assert seen == {"requests": [], "errors": []}


def test_the_page_folds_reviewer_ids_as_the_ledger_does(browser, tmp_path: Path) -> None:
    """Each assigned character, before, inside and after an id: the page and the CLI agree, or both refuse."""
    run = make_map_run(tmp_path / "run").path
    out = build_leads_map(run, encrypt=False, chip_px=0, quicklook_px=0)
    ctx, seen = _context(browser, DESKTOP)
    page = ctx.new_page()
    _watch(page, seen)
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ft-ready][data-ft-decide]")
    # Characters unassigned in Python's Unicode version are left out: a newer browser may know them.
    points = [c for c in range(0x110000) if unicodedata.category(chr(c)) not in ("Cn", "Cs")]
    forms = {"before": "{}rv07", "inside": "rv{}7", "after": "rv07{}"}
    expected = {
        name: {c: _canonical(form.format(chr(c))) for c in points} for name, form in forms.items()
    }
    wanted = {name: {c: key for c, key in keys.items() if key is not None} for name, keys in expected.items()}
    assert len(wanted["before"]) > 1000 and 0xFF32 in wanted["inside"] and 0x0440 not in wanted["inside"]
    mismatches = page.evaluate(
        """([points, forms, wanted]) => {
          const bad = [];
          for (const [name, form] of Object.entries(forms)) {
            for (const c of points) {
              const got = window.FTDecide.reviewerKey(form.replace('{}', String.fromCodePoint(c)));
              const want = wanted[name][c] === undefined ? null : wanted[name][c];
              if (got !== want && bad.length < 20) { bad.push([name, c.toString(16), got, want]); }
            }
          }
          return bad;
        }""",
        [points, forms, wanted],
    )
    assert mismatches == []
    assert page.evaluate("() => window.FTDecide.reviewerKey('  Stra\u00dfe-7 ')") == "strasse-7"
    ctx.close()
    assert seen == {"requests": [], "errors": []}


def _canonical(reviewer: str) -> str | None:
    try:
        return validate_reviewer(reviewer)
    except InvalidDecisionError:
        return None
