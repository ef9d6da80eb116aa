"""CSV exports of fieldtruth's decision form, written the way KoboToolbox and ODK Central write them.

The column conventions are those :mod:`fieldtruth.review.formcolumns` documents (with their sources):
KoboToolbox (formpack): ``;`` separator, every value quoted, ``\\r\\n`` line ends, headers by name with
``/``-joined groups or by label, geopoint split into ``_<q>_latitude`` ... ``_<q>_precision``, metadata
``_id``, ``_uuid``, ``_submission_time`` (UTC without zone), ... at the end. ODK Central: ``,``
separator, ``SubmissionDate`` first, groups joined with ``-``, geopoint as ``<path>-Latitude`` ...
``-Accuracy``, ``meta-instanceID``, ``KEY`` and Central's own columns at the end. No test lives here.
"""

from __future__ import annotations

import csv
import io
from typing import NamedTuple


class Submission(NamedTuple):
    """One filled-in form, as a server stores it."""

    uuid: str
    site: str
    decision: str
    method: str
    reviewer: str
    visited_at: str
    """The dateTime answer as the phone wrote it (ISO 8601 with the phone's zone)."""
    submitted_utc: str
    """When the server received it, UTC, as ``2026-03-02T09:41:19``."""
    position: tuple[float, float, float, float] | None = None
    photo: str = ""
    note: str = ""
    review_state: str = ""
    started: str = ""
    """The phone's ``start`` metadata (when the form was opened), where the form has it."""
    ended: str = ""
    """The phone's ``end`` metadata (when the form was last saved), where the form has it."""


DECISION_LABELS = {"confirmed": "Confirmed", "rejected": "Rejected", "uncertain": "Uncertain",
                   "field_visit": "Field visit needed"}
MEDIA_URL = "https://kc.kobotoolbox.org/media/original?media_file="
METHOD_LABELS = {"imagery": "Imagery", "field": "Field visit", "other": "Other"}


def _geo(sub: Submission) -> list[str]:
    return [str(v) for v in sub.position] if sub.position else ["", "", "", ""]


def _has_start_end(subs: list[Submission]) -> bool:
    """A form made in KoboToolbox's builder, or an ODK form with ``start``/``end``, exports those columns."""
    return any(s.started or s.ended for s in subs)


def kobo_csv(tag: str, subs: list[Submission], *, labels: bool = False) -> str:
    """A KoboToolbox CSV export: XML names with groups in headers, or (``labels``) the default labels.

    With ``start``/``end`` metadata (a submission gives them), those are the first two columns.
    """
    times = _has_start_end(subs)
    if labels:
        head = ["fieldtruth_run", "Site id", "Decision", "How did you decide?", "Your reviewer code",
                "When did you look?", "Your position (optional)"]
        head += [f"_Your position (optional)_{p}" for p in ("latitude", "longitude", "altitude", "precision")]
        head += ["A photo (optional)", "A photo (optional)_URL", "Note"]
    else:
        head = ["fieldtruth_run"] + [f"visit/{q}" for q in ("site_id", "decision", "method", "reviewer",
                                                              "visited_at", "position")]
        head += [f"visit/_position_{p}" for p in ("latitude", "longitude", "altitude", "precision")]
        head += ["visit/photo", "visit/photo_URL", "visit/note"]
    head += ["_id", "_uuid", "_submission_time", "_validation_status", "_notes", "_status", "_submitted_by",
             "__version__", "_tags", "_index"]
    head = ["start", "end", *head] if times else head
    rows = []
    for i, s in enumerate(subs, 1):
        site = f"{s.site} (brick kiln)" if labels else s.site  # a label export gives the choice's label
        decision = DECISION_LABELS[s.decision] if labels else s.decision
        method = METHOD_LABELS[s.method] if labels else s.method
        url = f"{MEDIA_URL}ngo%2Fattachments%2F{s.photo}" if s.photo else ""
        answers = [tag, site, decision, method, s.reviewer, s.visited_at, " ".join(_geo(s)).strip(), *_geo(s),
                   s.photo, url, s.note]
        meta = [str(100 + i), s.uuid, s.submitted_utc, s.review_state, "", "submitted_via_web",
                "field.worker.login", "vXyZ123", "", str(i)]
        rows.append(([s.started, s.ended] if times else []) + answers + meta)
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerows([head, *rows])
    return out.getvalue()


def central_csv(tag: str, subs: list[Submission], version: str = "20260301120000") -> str:
    """An ODK Central CSV export (the root table of its download), group names kept.

    With ``start``/``end`` metadata (a submission gives them), those follow ``SubmissionDate``.
    """
    times = _has_start_end(subs)
    head = ["SubmissionDate", *(["start", "end"] if times else []), "fieldtruth_run"]
    head += [f"visit-{q}" for q in ("site_id", "decision", "method", "reviewer", "visited_at")]
    head += [f"visit-position-{p}" for p in ("Latitude", "Longitude", "Altitude", "Accuracy")]
    head += ["visit-photo", "visit-note", "meta-instanceID", "meta-instanceName", "KEY", "SubmitterID",
             "SubmitterName", "AttachmentsPresent", "AttachmentsExpected", "Status", "ReviewState",
             "DeviceID", "Edits", "FormVersion"]
    rows = []
    for s in subs:
        key = f"uuid:{s.uuid}"
        meta_times = [s.started, s.ended] if times else []
        rows.append([s.submitted_utc + ".000Z", *meta_times, tag, s.site, s.decision, s.method, s.reviewer,
                     s.visited_at, *_geo(s), s.photo, s.note, key, f"{s.site} {s.decision}", key, "7",
                     "Field team phone 3", "1" if s.photo else "0", "1" if s.photo else "0", "",
                     s.review_state, "collect:Xyz", "0", version])
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows([head, *rows])
    return out.getvalue()
