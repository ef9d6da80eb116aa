"""One person, one vote: reviewer ids are compared in one canonical form, through every way in.

Each test is an attack that passed before reviewer ids were canonicalised: one person confirming a site
twice under ids that differ only by case, compatibility form, surrounding whitespace or fullwidth letters,
through the Python API, through ``review import``, and with ``--require-field-visit``.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fieldtruth.pipelines.cli_review import export_group, review_group
from fieldtruth.review.actionable import Rule, export_actionable
from fieldtruth.review.errors import FieldFileError, InvalidDecisionError, NotActionableError
from fieldtruth.review.fieldfile import import_field_file
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.rules import reviewer_key, validate_reviewer
from fieldtruth.tests.data.runfolder import make_run_folder

CLI = click.Group(commands=[review_group, export_group])
#: The same person as "rv07", written another way.
SAME_PERSON = ["RV07", "Rv07", " rv07 ", "\trv07\n", "ｒｖ０７", "ＲＶ０７", "rv\uff107"]
#: Ids that merely look like "rv07" (other scripts, invisible characters): refused, never merged or counted.
LOOK_ALIKES = ["rv0\u0667", "r\u043207", "\u0440v07", "rv\u200b07", "rv07\u00ad", "rv\u206007"]


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    path = make_run_folder(tmp_path / "run", seed=11).path
    with Ledger.of_run(path):
        pass
    return path


@pytest.mark.parametrize("variant", SAME_PERSON)
def test_variants_fold_to_one_canonical_id(variant: str) -> None:
    assert validate_reviewer(variant) == "rv07" == reviewer_key(variant)


@pytest.mark.parametrize("variant", LOOK_ALIKES)
def test_look_alike_ids_are_refused(variant: str) -> None:
    with pytest.raises(InvalidDecisionError, match="pseudonymous reviewer id"):
        validate_reviewer(variant)


@pytest.mark.parametrize("variant", SAME_PERSON)
def test_one_person_under_two_spellings_is_one_vote(run_dir: Path, tmp_path: Path, variant: str) -> None:
    with Ledger.open(run_dir / "review.sqlite") as led:
        led.decide("site-0001", "confirmed", "imagery", "rv07")
        entry = led.decide("site-0001", "confirmed", "field", variant)
    assert entry.reviewer == "rv07", "stored in canonical form"
    with pytest.raises(NotActionableError, match="best site has 1 confirming reviewer"):
        export_actionable(run_dir, tmp_path / "act.geojson")
    assert not (tmp_path / "act.geojson").exists()


def test_an_old_entry_in_capitals_and_a_new_one_are_one_vote(run_dir: Path, tmp_path: Path) -> None:
    """Version 2 ledgers stored ids as typed: they are compared through the same canonical form."""
    from fieldtruth.tests.data.ledger_v2 import write_v2_ledger

    (run_dir / "review.sqlite").unlink()
    write_v2_ledger(run_dir)  # site-0001: confirmed by "RV07" and by "rv09"
    with Ledger.open(run_dir / "review.sqlite") as led:
        led.decide("site-0001", "rejected", "imagery", "rv07")  # rv07 changes their mind: RV07's vote is gone
    with pytest.raises(NotActionableError):
        export_actionable(run_dir, tmp_path / "act.geojson")


def test_import_refuses_the_same_person_twice_in_one_file(run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "field.csv"
    path.write_text(
        "site_id,decision,method,reviewer\nsite-0001,confirmed,field,rv07\n"
        "site-0001,confirmed,imagery,ＲＶ07\n",
        encoding="utf-8",
    )
    with pytest.raises(FieldFileError, match="duplicate: reviewer 'rv07' already decides"):
        import_field_file(run_dir, path)
    with Ledger.open(run_dir / "review.sqlite") as led:
        assert list(led.entries()) == []


def test_import_cannot_add_a_second_vote_for_someone_already_in_the_ledger(
    run_dir: Path, tmp_path: Path
) -> None:
    with Ledger.open(run_dir / "review.sqlite") as led:
        led.decide("site-0002", "confirmed", "field", "rv07")
    path = tmp_path / "field.csv"
    path.write_text(
        "site_id,decision,method,reviewer\nsite-0002,confirmed,imagery, RV07 \n", encoding="utf-8"
    )
    assert import_field_file(run_dir, path).imported == 1  # recorded: a person may decide again
    with pytest.raises(NotActionableError):
        export_actionable(run_dir, tmp_path / "act.geojson", Rule(require_field_visit=True))
    result = CliRunner().invoke(
        CLI,
        ["export", "actionable", str(run_dir), "--out", str(tmp_path / "a.geojson"), "--require-field-visit"],
        obj={},
    )
    assert result.exit_code == 1 and "best site has 1 confirming reviewer" in result.output


def test_two_different_people_still_make_a_site_actionable(run_dir: Path, tmp_path: Path) -> None:
    with Ledger.open(run_dir / "review.sqlite") as led:
        led.decide("site-0003", "confirmed", "field", "ＲＶ07")
        led.decide("site-0003", "confirmed", "imagery", "rv08")
    assert export_actionable(run_dir, tmp_path / "act.geojson", Rule(require_field_visit=True)) == [
        "site-0003"
    ]
