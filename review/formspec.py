"""The questions of fieldtruth's decision form, shared by the XLSForm writer and the importer.

The form (:mod:`~fieldtruth.review.xlsform`) asks, for one lead: the site id, the decision, how it was
reached, the reviewer's code, when the person looked, optionally their position and a photo, and a
short note. KoboToolbox and ODK Central export the answers with headers made from these names (or,
in a KoboToolbox export "with labels", from these labels), so the importer
(:mod:`~fieldtruth.review.formcolumns`) reads them back through the same table.

The form holds site ids and kinds only, never a lead's coordinates: it is uploaded to a form server.
"""

from __future__ import annotations

from dataclasses import dataclass

#: A hidden calculated answer carrying the run's tag, so an export can be matched to its run.
RUN_FIELD = "fieldtruth_run"

#: The group all questions sit in (one screen in ODK Collect: appearance ``field-list``).
GROUP, GROUP_LABEL = "visit", "Decision about a lead"

#: Choices of the decision and method questions: ledger word -> label shown to the person.
DECISION_LABELS: dict[str, str] = {
    "confirmed": "Confirmed",
    "rejected": "Rejected",
    "uncertain": "Uncertain",
    "field_visit": "Field visit needed",
}
METHOD_LABELS: dict[str, str] = {"imagery": "Imagery", "field": "Field visit", "other": "Other"}

#: The ledger's rule for reviewer ids, as an XPath regex for the form's constraint.
REVIEWER_REGEX = "^[A-Za-z0-9][A-Za-z0-9._-]{1,31}$"


@dataclass(frozen=True)
class Question:
    """One row of the XLSForm ``survey`` sheet."""

    type: str
    name: str
    label: str
    hint: str = ""
    required: bool = False
    appearance: str = ""
    constraint: str = ""
    constraint_message: str = ""
    default: str = ""
    parameters: str = ""


#: The importer's field each question's answer feeds (the same name, except the photo: a file name).
SITE, DECISION, METHOD, REVIEWER = "site_id", "decision", "method", "reviewer"
VISITED_AT, POSITION, PHOTO, NOTE = "visited_at", "position", "photo", "note"

QUESTIONS: tuple[Question, ...] = (
    Question("select_one decision", DECISION, "Decision", required=True),
    Question("select_one method", METHOD, "How did you decide?", required=True, default="field"),
    Question(
        "text", REVIEWER, "Your reviewer code", "A short code such as rv07: never your name or e-mail.",
        required=True, constraint=f"regex(., '{REVIEWER_REGEX}')",
        constraint_message="2-32 letters, digits, '.', '_' or '-'; no spaces, no e-mail address.",
    ),
    Question(
        "dateTime", VISITED_AT, "When did you look?", "Now by default; change it if you looked earlier.",
        required=True, default="now()",
    ),
    Question(
        "geopoint", POSITION, "Your position (optional)",
        "Record it only where that is safe: it is kept with the decision.",
    ),
    Question(
        "image", PHOTO, "A photo (optional)",
        "Only the photo's fingerprint (SHA-256) enters the ledger; the photo stays with your team.",
        parameters="max-pixels=2000",
    ),
    Question(
        "text", NOTE, "Note", "Short. No names, phone numbers or descriptions of people.",
        appearance="multiline", constraint="string-length(.) <= 2000",
        constraint_message="At most 2000 characters.",
    ),
)
"""Every question after the site id, in form order."""

SITE_LABEL = "Site id"
SITE_HINT = "Type part of the id shown in the lead's popup on the map."


def label_of(name: str) -> str | None:
    """Return the label of the question ``name`` (the site id's included), or None."""
    if name == SITE:
        return SITE_LABEL
    return next((q.label for q in QUESTIONS if q.name == name), None)
