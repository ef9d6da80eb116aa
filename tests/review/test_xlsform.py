"""The XLSForm of a run's open leads: it converts with pyxform, lists only open leads, and names its run."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import click
import openpyxl
import pytest
from click.testing import CliRunner
from pyxform.xls2xform import convert

from fieldtruth.pipelines.cli_review import forget_command, review_group
from fieldtruth.review.errors import FieldFormError
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.xlsform import build_form, run_tag, save_xlsform
from fieldtruth.tests.data.runfolder import make_run_folder

XF = {"x": "http://www.w3.org/2002/xforms", "h": "http://www.w3.org/1999/xhtml"}
CLI = click.Group(commands=[review_group, forget_command])


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    run = make_run_folder(tmp_path / "run", seed=5).path
    with Ledger.of_run(run) as ledger:
        ledger.decide("site-0001", "confirmed", "imagery", "rv01")  # decided: not asked again
        ledger.decide("site-0002", "uncertain", "imagery", "rv01")  # still open
        ledger.decide("site-0003", "field_visit", "imagery", "rv01")  # still open
        ledger.erase_site("site-0004", "owner request", "dpo1")  # erased: never listed
    return run


def _xform(path: Path) -> ET.Element:
    warnings: list[str] = []
    result = convert(xlsform=str(path), warnings=warnings)  # pyxform's API, no ODK Validate, no network
    return ET.fromstring(result.xform)


def test_form_converts_with_pyxform_and_lists_open_leads(run_dir: Path, tmp_path: Path) -> None:
    form = build_form(run_dir, now=datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    out = save_xlsform(form, tmp_path / "form.xlsx")
    root = _xform(out)
    data = root.find(".//x:instance/x:data", XF)
    with Ledger.of_run(run_dir) as ledger:
        tag = run_tag(ledger)
    assert data.get("id") == f"fieldtruth_{tag}" and data.get("version") == "20260301120000"
    sites = [n.text for n in root.findall(".//x:instance[@id='site']//x:name", XF)]
    assert len(sites) == 20 - 2 and "site-0002" in sites and "site-0003" in sites
    assert "site-0001" not in sites and "site-0004" not in sites
    binds = {b.get("nodeset").rsplit("/", 1)[-1]: b for b in root.iter("{http://www.w3.org/2002/xforms}bind")}
    assert binds["fieldtruth_run"].get("calculate") == f"'{tag}'"
    assert binds["position"].get("type") == "geopoint" and binds["photo"].get("type") == "binary"
    assert binds["visited_at"].get("type") == "dateTime" and binds["reviewer"].get("required") == "true()"
    assert "regex(" in binds["reviewer"].get("constraint")
    setvalue = root.find(".//x:setvalue[@ref='/data/visit/visited_at']", XF)
    assert setvalue.get("value") == "now()"  # the visit time defaults to now, editable
    decisions = {n.text for n in root.findall(".//x:instance[@id='decision']//x:name", XF)}
    assert decisions == {"confirmed", "rejected", "uncertain", "field_visit"}
    book = openpyxl.load_workbook(out)
    cells = " ".join(str(c.value) for sheet in book for row in sheet.iter_rows() for c in row)
    assert "25." not in cells and "87." not in cells  # no coordinates of leads (near 25.5 N 87.0 E)


def test_a_long_list_becomes_a_constrained_text(run_dir: Path, tmp_path: Path) -> None:
    form = build_form(run_dir, max_choices=5)
    assert form.site_as_text and not [c for c in form.choices if c["list_name"] == "site"]
    root = _xform(save_xlsform(form, tmp_path / "form.xlsx"))
    bind = root.find(".//x:bind[@nodeset='/data/visit/site_id']", XF)
    assert bind.get("type") == "string" and "regex(" in bind.get("constraint")


def test_form_cells_are_text_never_formulas(run_dir: Path, tmp_path: Path) -> None:
    form = build_form(run_dir)
    form.choices[0]["label"] = '=HYPERLINK("http://x.invalid","y")'
    book = openpyxl.load_workbook(save_xlsform(form, tmp_path / "form.xlsx"))
    cell = book["choices"]["C2"]
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")
    assert book.sheetnames == ["survey", "choices", "settings"]


def test_form_command(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "forms" / "leads.xlsx"
    result = CliRunner().invoke(CLI, ["review", "form", str(run_dir), "--out", str(out)], obj={})
    assert result.exit_code == 0, result.output
    assert "18 open lead(s)" in result.output and out.exists()
    assert _xform(out).find(".//x:instance/x:data", XF) is not None


def test_no_open_lead_is_a_clear_error(tmp_path: Path) -> None:
    run = make_run_folder(tmp_path / "run", n=2, seed=1).path
    with Ledger.of_run(run) as ledger:
        for site in ("site-0000", "site-0001"):
            ledger.decide(site, "rejected", "imagery", "rv01")
    with pytest.raises(FieldFormError, match="found none"):
        build_form(run)
    result = CliRunner().invoke(CLI, ["review", "form", str(run), "--out", str(tmp_path / "f.xlsx")], obj={})
    assert result.exit_code == 1 and "nothing to verify" in result.output
    assert not (tmp_path / "f.xlsx").exists()


def test_erasing_a_site_removes_a_form_that_lists_it(run_dir: Path) -> None:
    from fieldtruth.review.erasure import forget_site

    form = save_xlsform(build_form(run_dir), run_dir / "forms" / "leads.xlsx")  # zipped XML: not plain text
    report = forget_site(run_dir, "site-0005", "owner request", "dpo1")
    assert not form.exists() and "forms/leads.xlsx" in report.deleted
