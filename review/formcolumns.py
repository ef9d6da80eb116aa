"""Column names of form-server exports and spreadsheets, mapped to the importer's fields.

The importer's fields are ``site_id``, ``decision``, ``method``, ``reviewer`` (required), ``note``,
``scenes``, ``photos`` (SHA-256 digests), ``photo_files`` (photo file names, hashed with ``--photos``),
``visited_at``, ``latitude``, ``longitude``, ``accuracy_m`` (also read from ``visit_latitude``,
``visit_longitude``, ``visit_accuracy_m``, the names the map's queue CSV uses beside the lead's own
``lat``/``lon``), and the submission's ``instance_id``, ``started_at`` and ``ended_at`` (the phone's
``start`` and ``end``), ``submitted_at``, ``review_state`` and ``run_tag``. A header is matched,
case-insensitively, by a question's name or label (:mod:`~fieldtruth.review.formspec`), alone or after
a group prefix.

KoboToolbox CSV export (kobotoolbox/formpack ``src/formpack/schema/fields.py`` and
``reporting/export.py``; the expected exports in kobotoolbox/kpi ``kpi/tests/test_mock_data_exports.py``):

- separator ``;`` by default, every value quoted, ``\\r\\n`` line ends;
- headers are the questions' labels by default ("Site id"), or their names with "XML values and
  headers"; "include groups in headers" prefixes the group, joined with ``/`` (``visit/site_id``, or
  with labels ``Decision about a lead/Site id``); select_one answers are the choices' labels or names;
- a geopoint gives its raw answer (``lat lon alt accuracy``) in the question's column, then
  ``_<question>_latitude``, ``_<question>_longitude``, ``_<question>_altitude``, ``_<question>_precision``
  (formpack ``FormGPSField``; the precision is the accuracy in metres);
- an image answer is the photo's file name; "include media URLs" adds a URL column (``<question>_URL``,
  as far as we know: no source seen; it is ignored either way, never fetched);
- metadata at the end: ``_id``, ``_uuid`` (the submission's uuid), ``_submission_time`` (UTC, without
  a zone), ``_validation_status``, ``_notes``, ``_status``, ``_submitted_by`` (a user name: never
  stored), ``__version__``, ``_tags``, ``_index``; ``meta/instanceID`` (``uuid:...``) when included;
  ``start`` and ``end`` (the phone's clock, with its offset) near the front, as KoboToolbox's form
  builder adds them to every form.

ODK Central CSV export (getodk/central-backend ``lib/data/briefcase.js``;
https://docs.getodk.org/central-submissions/):

- separator ``,``, UTF-8 without a byte-order mark, a ``.zip`` holding the CSV and a
  ``files/<instanceID>/`` folder of attachments (``media/`` in older versions);
- first column ``SubmissionDate`` (ISO 8601, UTC), then one column per field named by its path with
  groups joined by ``-`` (``visit-site_id``; only the field name with "remove group names"), the form's
  ``meta-instanceID``, then ``KEY`` (the instanceID), ``SubmitterID``, ``SubmitterName``,
  ``AttachmentsPresent``, ``AttachmentsExpected``, ``Status``, ``ReviewState``, ``DeviceID``, ``Edits``,
  ``FormVersion``;
- a geopoint gives ``<path>-Latitude``, ``<path>-Longitude``, ``<path>-Altitude``, ``<path>-Accuracy``
  (the ODK Briefcase export format, docs/export-format.md of getodk/briefcase);
- select_one answers are choice names; an image answer is the attachment's file name; a form's ``start``
  and ``end`` metadata, where it has them, are columns ``start`` and ``end``.

Which of these times becomes the visit time, and how zones are read: :mod:`~fieldtruth.review.fieldtime`.

Submissions the server's reviewers turned down (ODK Central ``ReviewState`` ``rejected``, KoboToolbox
``_validation_status`` "not approved") are skipped and counted, never imported.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import tzinfo
from typing import Any, NamedTuple

from fieldtruth.review.fieldtime import visit_time
from fieldtruth.review.formspec import (
    DECISION_LABELS,
    METHOD_LABELS,
    NOTE,
    PHOTO,
    POSITION,
    RUN_FIELD,
    SITE,
    label_of,
)

log = logging.getLogger(__name__)

REQUIRED: tuple[str, ...] = ("site_id", "decision", "method", "reviewer")

#: Metadata columns as the servers name them (case-sensitive), with a priority among equivalents.
METADATA: dict[str, tuple[str, int]] = {
    "meta/instanceID": ("instance_id", 0), "meta-instanceID": ("instance_id", 0),
    "instanceID": ("instance_id", 0), "KEY": ("instance_id", 1), "_uuid": ("instance_id", 2),
    "SubmissionDate": ("submitted_at", 0), "_submission_time": ("submitted_at", 0),
    "ReviewState": ("review_state", 0), "_validation_status": ("review_state", 0),
    "start": ("started_at", 0), "end": ("ended_at", 0),
}

#: Answers of a form question are read under these names (or the question's label).
_QUESTION_FIELDS: dict[str, str] = {
    SITE: "site_id", "decision": "decision", "method": "method", "reviewer": "reviewer", NOTE: "note",
    "visited_at": "visited_at", POSITION: "geopoint", PHOTO: "photo_files", RUN_FIELD: "run_tag",
    "scenes": "scenes", "photos": "photos", "latitude": "latitude", "longitude": "longitude",
    "accuracy_m": "accuracy_m", "visit_latitude": "latitude", "visit_longitude": "longitude",
    "visit_accuracy_m": "accuracy_m",
}


def _candidates() -> dict[str, list[str]]:
    """Field -> the (casefolded) column names that feed it, without group prefixes."""
    found: dict[str, list[str]] = {}
    for name, target in _QUESTION_FIELDS.items():
        found.setdefault(target, []).append(name)
        label = label_of(name)
        if label and label.casefold() != name:
            found[target].append(label.casefold())
    kobo = (("latitude", "latitude"), ("longitude", "longitude"), ("precision", "accuracy_m"))
    for question in (POSITION, (label_of(POSITION) or POSITION).casefold()):
        for part, target in kobo:
            found[target].append(f"_{question}_{part}")  # KoboToolbox
    for part, target in (("latitude", "latitude"), ("longitude", "longitude"), ("accuracy", "accuracy_m")):
        found[target].append(f"{POSITION}-{part}")  # ODK Central
    return found


CANDIDATES = _candidates()

#: Rows whose every one of these is empty decide nothing: skipped and counted (a queue row left blank).
DECISION_FIELDS: tuple[str, ...] = (
    "decision", "method", "reviewer", "note", "visited_at", "scenes", "photos", "photo_files", "geopoint",
    "latitude", "longitude", "accuracy_m",
)

_REJECTED_STATES = {"rejected", "validation_status_not_approved", "not approved"}
_LABEL_WORDS = {f: {lab.casefold(): word for word, lab in labels.items()}
                for f, labels in (("decision", DECISION_LABELS), ("method", METHOD_LABELS))}
_SITE_LABEL_RE = re.compile(r"^(\S+) \(.*\)$")


class Columns(NamedTuple):
    """Which column of a file feeds which field of the importer."""

    by_field: dict[str, str]
    ignored: list[str]


def _field_of(header: str) -> tuple[str, int] | None:
    if header in METADATA:
        return METADATA[header]
    key = header.strip().casefold()
    for target, names in CANDIDATES.items():
        if any(key == n or key.endswith(("/" + n, "-" + n)) for n in names):
            return target, 0
    return None


def map_columns(headers: Sequence[str]) -> Columns:
    """Map a file's column names to the importer's fields.

    Raises:
        ValueError: If required columns are missing (naming them all, once) or two columns feed the
            same field.
    """
    chosen: dict[str, tuple[int, str]] = {}
    ignored: list[str] = []
    clashes: list[str] = []
    for header in headers:
        found = _field_of(header) if header else None
        if found is None:
            ignored.append(header)
            continue
        target, rank = found
        if target in chosen and chosen[target][0] == rank:
            clashes.append(f"{chosen[target][1]!r} and {header!r} both give {target!r}")
        if target not in chosen or rank < chosen[target][0]:
            chosen[target] = (rank, header)
    if clashes:
        raise ValueError(f"expected one column per field; {'; '.join(clashes)}. Remove or rename one.")
    missing = [f for f in REQUIRED if f not in chosen]
    if missing:
        raise ValueError(
            f"missing column(s) {', '.join(missing)}: add them to the header line (and fill them in on the "
            f"rows you decided; rows left blank are skipped). Expected at least {', '.join(REQUIRED)}; "
            "optional: note, visited_at, latitude, longitude, accuracy_m, scenes, photos. "
            f"Found {list(headers)!r}"
            + (" (one column only: separate columns with ',', ';' or a tab)" if len(headers) == 1 else "")
        )
    return Columns({t: h for t, (_, h) in chosen.items()}, ignored)


def _text(value: Any) -> Any:
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else value


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def canonical_row(
    columns: Columns, values: Mapping[str, Any], zone: tzinfo | None = None
) -> dict[str, Any]:
    """Return one row's values under the importer's field names, normalised.

    Labels of choices become ledger words, ``uuid:`` prefixes go, a Kobo raw geopoint is split when
    its parts are absent, and the visit time is chosen by the rule of :mod:`~fieldtruth.review.fieldtime`
    (the form's answer, else the phone's ``start``, else ``end``, else the server's receipt time; local
    times without a zone read in ``zone``). A row that decides nothing is ``{"__skip__": "blank"}``; one
    turned down on the server ``{"__skip__": "rejected on the server"}``; one with a time that cannot
    be read ``{"__error__": message}``.
    """
    row = {field: _text(values.get(header)) for field, header in columns.by_field.items()}
    if all(_is_empty(row.get(f)) for f in DECISION_FIELDS):
        return {"__skip__": "blank"}
    if str(row.pop("review_state", "")).casefold() in _REJECTED_STATES:
        return {"__skip__": "rejected on the server"}
    for field in ("decision", "method"):
        if isinstance(row.get(field), str):
            row[field] = _LABEL_WORDS[field].get(row[field].casefold(), row[field])
    match = _SITE_LABEL_RE.match(str(row.get("site_id", "")))
    if match:
        row["site_id"] = match.group(1)  # a KoboToolbox label export gives the choice's label
    if isinstance(row.get("instance_id"), str):
        row["instance_id"] = row["instance_id"].removeprefix("uuid:")
    geopoint = str(row.pop("geopoint", "") or "").split()
    if len(geopoint) >= 2 and _is_empty(row.get("latitude")) and _is_empty(row.get("longitude")):
        row["latitude"], row["longitude"] = geopoint[0], geopoint[1]
        if len(geopoint) >= 4:
            row["accuracy_m"] = geopoint[3]
    try:
        row["visited_at"] = visit_time(row, columns.by_field, zone)
    except ValueError as exc:
        return {"__error__": str(exc)}
    return {k: v for k, v in row.items() if not _is_empty(v)}
