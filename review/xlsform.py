"""An XLSForm of a run's open leads, for KoboToolbox and ODK (Collect, Central, Enketo).

The XLSForm standard (https://xlsform.org) describes a form as a workbook of three sheets: ``survey``
(one question per row: ``type``, ``name``, ``label``, ...), ``choices`` (``list_name``, ``name``,
``label``) and ``settings`` (``form_title``, ``form_id``, ``version``, ...). Both KoboToolbox and ODK
Central accept such a file as it is and turn it into an XForm with pyxform.

The form lists the run's open leads (``unverified``, ``uncertain``, ``field_visit``; erased sites never)
as the choices of the site question, highest risk first, each labelled with its id and kind: no
coordinates, because the form is uploaded to a server. Up to :data:`MAX_SITE_CHOICES` leads the site
is a ``select_one`` with ``autocomplete`` (type part of the id); beyond that a choice list slows phones
down, so the site becomes a text answer constrained to one word, and the import reports ids that are
not in the run. The settings tie the form to its run: ``form_id`` is ``fieldtruth_<run tag>``, a hidden
calculated answer ``fieldtruth_run`` carries the tag into every submission (the import refuses an
export made for another run), and ``version`` is the time the form was written.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fieldtruth.atomicfile import atomic_path
from fieldtruth.review.errors import FieldFormError
from fieldtruth.review.formspec import (
    DECISION_LABELS,
    GROUP,
    GROUP_LABEL,
    METHOD_LABELS,
    QUESTIONS,
    RUN_FIELD,
    SITE,
    SITE_HINT,
    SITE_LABEL,
    Question,
)
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.queue import review_queue

log = logging.getLogger(__name__)

OPEN_STATUSES: tuple[str, ...] = ("unverified", "uncertain", "field_visit")
"""Statuses of the leads a form asks about: not yet decided, or decided as needing another look."""

MAX_SITE_CHOICES = 5000
"""Above this many open leads the site question is a constrained text instead of a choice list."""

SURVEY_COLUMNS = ("type", "name", "label", "hint", "required", "appearance", "constraint",
                  "constraint_message", "default", "parameters", "calculation")


@dataclass(frozen=True)
class XLSForm:
    """A form ready to save: the rows of its three sheets, and what it covers."""

    survey: list[dict[str, str]]
    choices: list[dict[str, str]]
    settings: dict[str, str]
    leads: int
    site_as_text: bool

    @property
    def run_tag(self) -> str:
        """The run tag the form's submissions carry in ``fieldtruth_run``."""
        return self.settings["form_id"].removeprefix("fieldtruth_")


def run_tag(ledger: Ledger) -> str:
    """Return a short tag naming the run: a digest of when the ledger first registered its sites.

    Sites keep their ``registered_at`` for the life of the ledger, so the tag stays the same while the
    ledger grows, and differs between runs (and from a ledger started afresh).
    """
    first = min((s.registered_at for s in ledger.sites().values()), default="")
    return hashlib.sha256(f"fieldtruth-run\n{first}".encode()).hexdigest()[:12]


def _row(q: Question) -> dict[str, str]:
    return {"type": q.type, "name": q.name, "label": q.label, "hint": q.hint,
            "required": "yes" if q.required else "", "appearance": q.appearance, "constraint": q.constraint,
            "constraint_message": q.constraint_message, "default": q.default, "parameters": q.parameters}


def _site_question(as_text: bool) -> dict[str, str]:
    if as_text:
        return _row(Question("text", SITE, SITE_LABEL, SITE_HINT, required=True,
                             constraint="regex(., '^[^ ]{1,64}$')",
                             constraint_message="One word: the site id exactly as the map shows it."))
    return _row(Question("select_one site", SITE, SITE_LABEL, SITE_HINT, required=True,
                         appearance="autocomplete"))


def build_form(run_dir: Path, *, now: datetime | None = None, max_choices: int = MAX_SITE_CHOICES) -> XLSForm:
    """Build the XLSForm of a run's open leads.

    Args:
        run_dir: The run folder (``detections.parquet`` and ``review.sqlite``).
        now: The time written as the form's version (default: now, UTC).
        max_choices: Above this many open leads the site is asked as constrained text.

    Returns:
        The form's rows and settings (save it with :func:`save_xlsform`).

    Raises:
        FieldFormError: If the run has no open lead (nothing to verify).
    """
    run_dir = Path(run_dir)
    leads = review_queue(run_dir, OPEN_STATUSES)
    if not leads:
        raise FieldFormError(
            f"expected open leads (unverified, uncertain or field-visit) in {str(run_dir)!r}; found none, so "
            "there is nothing to verify. See `fieldtruth review status RUN`."
        )
    with Ledger.of_run(run_dir) as ledger:
        tag = run_tag(ledger)
    as_text = len(leads) > max_choices or any(not lead.site_id or " " in lead.site_id for lead in leads)
    survey = [{"type": "calculate", "name": RUN_FIELD, "label": "", "calculation": f"'{tag}'"},
              {"type": "begin_group", "name": GROUP, "label": GROUP_LABEL, "appearance": "field-list"},
              _site_question(as_text), *(_row(q) for q in QUESTIONS), {"type": "end_group", "name": GROUP}]
    choices = [] if as_text else [
        {"list_name": "site", "name": s.site_id, "label": f"{s.site_id} ({s.label.replace('_', ' ')})"}
        for s in leads
    ]
    choices += [{"list_name": "decision", "name": k, "label": v} for k, v in DECISION_LABELS.items()]
    choices += [{"list_name": "method", "name": k, "label": v} for k, v in METHOD_LABELS.items()]
    when = (now or datetime.now(UTC)).astimezone(UTC)
    settings = {"form_title": f"fieldtruth decisions: {run_dir.name}", "form_id": f"fieldtruth_{tag}",
                "version": when.strftime("%Y%m%d%H%M%S"),
                "instance_name": f"concat(${{{SITE}}}, ' ', ${{decision}})"}
    log.info("form %s: %d open lead(s), site asked as %s", settings["form_id"], len(leads),
             "text" if as_text else "a choice")
    return XLSForm(survey, choices, settings, len(leads), as_text)


def save_xlsform(form: XLSForm, path: Path) -> Path:
    """Write the form as an ``.xlsx`` workbook with sheets ``survey``, ``choices`` and ``settings``.

    The file is replaced whole or not at all (:func:`fieldtruth.atomicfile.atomic_path`), owner-only.
    """
    import openpyxl
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    book = openpyxl.Workbook()
    sheets: list[tuple[str, list[str], list[dict[str, Any]]]] = [
        ("survey", list(SURVEY_COLUMNS), form.survey),
        ("choices", ["list_name", "name", "label"], form.choices),
        ("settings", list(form.settings), [form.settings]),
    ]
    book.remove(book.active)
    for title, columns, rows in sheets:
        sheet = book.create_sheet(title)
        sheet.append(columns)
        for row in rows:
            sheet.append([ILLEGAL_CHARACTERS_RE.sub("", str(row.get(c, ""))) for c in columns])
            for cell in sheet[sheet.max_row]:
                cell.data_type = "s"  # text, never a formula, even when a value starts with '='
    with atomic_path(path) as tmp:
        book.save(tmp)
    return Path(path)
