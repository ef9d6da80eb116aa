"""Importing decisions gathered in the field (CSV or GeoJSON, e.g. from a form tool).

Every row is validated with pydantic at the edge, then checked against the ledger: unknown or erased
sites, bad values and duplicate decisions are all reported with their line numbers, and nothing is
applied unless every row is valid. The valid file is appended in one transaction.

Columns (CSV header, or GeoJSON feature properties): ``site_id``, ``decision`` (confirmed, rejected,
uncertain, field-visit), ``method`` (imagery, field, other), ``reviewer`` (pseudonymous id), optional
``note``, ``scenes`` (``ID`` or ``ID:SHA256``, several separated by ``;``) and ``photos`` (SHA-256
digests separated by ``;``), and optional ``visited_at`` (when the person visited or decided: ISO 8601
with a time zone, a local time with ``timezone`` given, or a date; else the phone's ``start``/``end``
or the server's receipt time, by the rule of :mod:`~fieldtruth.review.fieldtime`) and ``latitude``,
``longitude``, ``accuracy_m`` (where the person was, only when they chose to record it; kept in the
erasable evidence). A GeoJSON feature's geometry is never read:
the visit position comes from those properties only. Other columns are ignored and never stored.

The same fields are read from the CSV exports of KoboToolbox and ODK Central (of the form
:mod:`~fieldtruth.review.xlsform` writes; ODK Central's .zip download too), the map's queue CSV with its
decision columns filled in, and CSVs as spreadsheet programs save them (see :func:`read_field_file`).
Rows that decide nothing, submissions repeated or turned down on the server, rows about erased sites
and decisions already in the ledger are skipped and counted (:class:`ImportReport`); decisions are
appended in the order of their visit times.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections import Counter
from datetime import tzinfo
from pathlib import Path
from typing import Any, NamedTuple

import pydantic

from fieldtruth.review.attachments import PhotoFolder, attach_photos
from fieldtruth.review.csvtable import read_csv_table
from fieldtruth.review.errors import FieldFileError
from fieldtruth.review.formcolumns import canonical_row, map_columns
from fieldtruth.review.ledger import Decision, Ledger, validated
from fieldtruth.review.records import evidence_text
from fieldtruth.review.rules import reviewer_key
from fieldtruth.review.xlsform import run_tag

log = logging.getLogger(__name__)

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
FIELDS = ("site_id", "decision", "method", "reviewer", "note", "scenes", "photos", "visited_at", "latitude",
          "longitude", "accuracy_m")


def _split(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value]
    return [part.strip() for part in str(value).split(";") if part.strip()]


def scene_ref(text: str) -> dict[str, str | None]:
    """Parse ``ID`` or ``ID:SHA256`` (64 hex characters after the last colon) into a scene reference."""
    scene_id, _, sha = text.rpartition(":")
    if scene_id and _SHA256_RE.fullmatch(sha.lower()):
        return {"id": scene_id, "sha256": sha.lower()}
    return {"id": text, "sha256": None}


class FieldRow(pydantic.BaseModel):
    """One decision as a field file gives it (validated, normalised)."""

    model_config = pydantic.ConfigDict(extra="ignore", str_strip_whitespace=True)

    site_id: str = pydantic.Field(min_length=1)
    decision: str
    method: str
    reviewer: str
    note: str = ""
    scenes: list[str] = []
    photos: list[str] = []
    visited_at: str | None = None
    latitude: str | float | None = None
    longitude: str | float | None = None
    accuracy_m: str | float | None = None

    @pydantic.field_validator("decision", "method", mode="before")
    @classmethod
    def _word(cls, value: Any) -> Any:
        return value.strip().lower().replace("-", "_") if isinstance(value, str) else value

    @pydantic.field_validator("note", mode="before")
    @classmethod
    def _note(cls, value: Any) -> Any:
        return "" if value is None else value

    @pydantic.field_validator("visited_at", "latitude", "longitude", "accuracy_m", mode="before")
    @classmethod
    def _optional(cls, value: Any) -> Any:
        return None if value is None or (isinstance(value, str) and not value.strip()) else value

    def position(self) -> dict[str, Any] | None:
        """The visit position, when the row gives one (latitude and longitude both, or neither)."""
        if self.latitude is None and self.longitude is None:
            if self.accuracy_m is not None:
                raise ValueError("accuracy_m is given without latitude and longitude; give all three or none")
            return None
        if self.latitude is None or self.longitude is None:
            raise ValueError(
                "expected both latitude and longitude of the visit, or neither; got "
                f"latitude={self.latitude!r}, longitude={self.longitude!r}"
            )
        return {"lat": self.latitude, "lon": self.longitude, "accuracy_m": self.accuracy_m}

    @pydantic.field_validator("scenes", "photos", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> list[str]:
        return _split(value)

    def to_decision(self) -> Decision:
        """Apply the ledger's own rules (raises InvalidDecisionError, a ValueError)."""
        evidence: dict[str, Any] = {"scenes": [scene_ref(s) for s in self.scenes], "photos": self.photos}
        position = self.position()
        if position is not None:
            evidence["position"] = position
        return validated(self.site_id, self.decision, self.method, self.reviewer, note=self.note,
                         evidence=evidence, visited_at=self.visited_at)


def _geojson_rows(text: str) -> list[tuple[int, dict[str, Any]]]:
    """Return (line, properties) per feature, the line being where the feature starts in the file."""
    decoder = json.JSONDecoder()
    doc = json.loads(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
        raise ValueError("expected a GeoJSON FeatureCollection with a 'features' list")
    at = _features_array_start(text, decoder)
    rows = []
    for index, _ in enumerate(doc["features"]):
        while text[at] in " \t\r\n,":
            at += 1
        feature, end = decoder.raw_decode(text, at)
        line = text.count("\n", 0, at) + 1
        props = feature.get("properties") if isinstance(feature, dict) else None
        bad = {"__error__": f"feature {index} has no properties"}
        rows.append((line, props if isinstance(props, dict) else bad))
        at = end
    return rows


def _features_array_start(text: str, decoder: json.JSONDecoder) -> int:
    """Find the offset just after the '[' of the top-level "features" member."""
    at = text.index("{") + 1
    while True:
        while text[at] in " \t\r\n,":
            at += 1
        key, at = decoder.raw_decode(text, at)
        while text[at] in " \t\r\n:":
            at += 1
        if key == "features":
            return at + 1
        _, at = decoder.raw_decode(text, at)


def read_field_file(path: Path, timezone: tzinfo | None = None) -> list[tuple[int, dict[str, Any]]]:
    """Read a CSV or GeoJSON field file into (line, row) pairs, each row under the importer's field names.

    CSV files are decoded and split as :mod:`~fieldtruth.review.csvtable` says, and the columns of
    KoboToolbox and ODK Central exports, the map's queue CSV and plain spreadsheets are mapped to the
    importer's fields as :mod:`~fieldtruth.review.formcolumns` says; each row's visit time is chosen,
    and local times without a zone are read in ``timezone``, as :mod:`~fieldtruth.review.fieldtime`
    says. A row that decides nothing is ``{"__skip__": reason}``; one that cannot be read
    ``{"__error__": message}``.

    Raises:
        FieldFileError: If the file cannot be read or parsed at all, or lacks required columns (once).
    """
    try:
        if path.suffix.lower() in (".geojson", ".json"):
            raw = _geojson_rows(path.read_text(encoding="utf-8-sig"))
            headers = list(dict.fromkeys(k for _, props in raw for k in props if k != "__error__"))
        else:
            table = read_csv_table(path)
            headers = table.header
            raw = [(r.line, r.values if not r.extra else {"__error__": _extra_values(r.extra, len(headers))})
                   for r in table.rows]
    except FieldFileError:
        raise
    except json.JSONDecodeError as exc:
        raise FieldFileError(str(path), [(exc.lineno, f"not valid JSON: {exc.msg}")]) from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise FieldFileError(str(path), [(0, f"cannot read the file: {exc}")]) from exc
    if not raw and not headers:
        return []
    try:
        columns = map_columns(headers)
    except ValueError as exc:
        raise FieldFileError(str(path), [(1, str(exc))]) from exc
    log.info("%s: columns %s; ignored %s", path, columns.by_field, columns.ignored)
    return [(line, props if "__error__" in props else canonical_row(columns, props, timezone))
            for line, props in raw]


def _extra_values(extra: int, columns: int) -> str:
    return (f"{extra} value(s) more than the header's {columns} column(s): a separator inside a value? "
            "Put that value in double quotes")


def _message(exc: pydantic.ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']} (got {e.get('input')!r})"
                     for e in exc.errors())


class ImportReport(NamedTuple):
    """What an import did: decisions appended, and rows left out by reason."""

    imported: int
    skipped: dict[str, int]
    """Rows left out: ``blank`` (deciding nothing), ``rejected on the server``, ``repeated submission``
    (an instance id seen earlier in the file), ``erased site``, ``already in the ledger`` (a re-import)."""

    def summary(self) -> str:
        """One line for people: how many were imported and why others were left out."""
        left = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
        return f"imported {self.imported} decision(s)" + (f"; skipped {left}" if left else "")


def check_rows(
    rows: list[tuple[int, dict[str, Any]]], ledger: Ledger
) -> tuple[list[Decision], list[tuple[int, str]], Counter[str]]:
    """Validate all rows; return the decisions, the problems (line, message) and skipped rows by reason."""
    sites, erased = set(ledger.sites()), set(ledger.erased_sites())
    existing = {
        (e.site_id, reviewer_key(e.reviewer), e.decision, e.method, evidence_text(e.evidence or {}),
         e.visited_at) for e in ledger.entries()
    }
    seen: dict[tuple[str, str, str], int] = {}
    submissions: set[str] = set()
    decisions, problems, skipped = [], [], Counter[str]()
    for line, raw in rows:
        instance = raw.get("instance_id")
        if "__skip__" in raw or (instance and instance in submissions):
            skipped[raw.get("__skip__", "repeated submission")] += 1
            continue
        submissions.add(instance)
        try:
            if "__error__" in raw:
                raise ValueError(raw["__error__"])
            decision = FieldRow.model_validate(raw).to_decision()
        except pydantic.ValidationError as exc:
            problems.append((line, _message(exc)))
            continue
        except ValueError as exc:
            problems.append((line, str(exc)))
            continue
        key = (decision.site_id, decision.reviewer, decision.visited_at or "")
        if decision.site_id in erased:
            skipped["erased site"] += 1
        elif decision.site_id not in sites:
            problems.append((line, f"unknown site {decision.site_id!r}: not a lead of this run"))
        elif key in seen:
            problems.append((line, (f"duplicate: reviewer {key[1]!r} already decides on {key[0]!r} at line "
                                    f"{seen[key]}")))
        elif (*key[:2], decision.decision, decision.method, evidence_text(decision.evidence),
              decision.visited_at) in existing:
            skipped["already in the ledger"] += 1
        else:
            seen[key] = line
            decisions.append(decision)
    return decisions, problems, skipped


def _with_photos(
    path: Path, rows: list[tuple[int, dict[str, Any]]], photos: Path | None, without_photos: bool
) -> list[tuple[int, dict[str, Any]]]:
    """Turn the rows' photo file names into digests from ``photos`` (:mod:`~fieldtruth.review.attachments`).

    Raises:
        FieldFileError: If photos are named but neither ``photos`` nor ``without_photos`` was given (once).
    """
    try:
        folder = PhotoFolder(photos) if photos is not None and not without_photos else None
    except ValueError as exc:
        raise FieldFileError(str(path), [(0, str(exc))]) from exc
    done, left_out = [], 0
    with folder or contextlib.nullcontext():
        for line, raw in rows:
            if "__skip__" not in raw and "__error__" not in raw:
                try:
                    left_out += attach_photos(raw, folder)
                except ValueError as exc:
                    raw = {"__error__": str(exc)}
            done.append((line, raw))
    if left_out and not without_photos:
        raise FieldFileError(str(path), [(1, (
            f"{left_out} photo(s) are named by file name, and the ledger keeps photo fingerprints only: give "
            "--photos DIR (the folder of the export's attachments) to record them, or --without-photos to "
            "import the decisions without them"))])
    return done


def import_field_file(
    run_dir: Path,
    path: Path,
    *,
    photos: Path | None = None,
    without_photos: bool = False,
    timezone: tzinfo | None = None,
) -> ImportReport:
    """Validate a field file completely, then append all its decisions in one transaction.

    Args:
        run_dir: The run folder.
        path: A CSV (any of the layouts :func:`read_field_file` reads) or GeoJSON file.
        photos: The folder of the export's attachments, to fingerprint photos named by file name.
        without_photos: Import decisions whose photos are named by file name without those photos.
        timezone: The zone of visit times written without one (a spreadsheet's local times); None
            refuses such times (:mod:`~fieldtruth.review.fieldtime`, e.g. ``parse_zone("Asia/Kathmandu")``).

    Returns:
        What was imported and what was skipped (blank rows, re-imports, erased sites, ...).

    Raises:
        FieldFileError: If any row is bad (every bad row is listed with its line), the file lacks
            columns, or it was made for another run; nothing is applied.
    """
    if photos is None and path.suffix.lower() == ".zip":
        photos = path  # ODK Central's download holds its attachments
    rows = _with_photos(path, read_field_file(path, timezone), photos, without_photos)
    if not rows:
        problem = "no decisions in the file: expected a row per decision after the header"
        raise FieldFileError(str(path), [(1, problem)])
    with Ledger.of_run(run_dir) as ledger:
        tag, tags = run_tag(ledger), {str(raw["run_tag"]) for _, raw in rows if raw.get("run_tag")}
        if tags - {tag}:
            raise FieldFileError(str(path), [(1, (
                f"expected answers to this run's form (fieldtruth_run {tag!r}); the file's are for "
                f"{sorted(tags - {tag})!r}, another run. Import it into that run, or collect with this run's "
                "form (`fieldtruth review form RUN`)"))])
        decisions, problems, skipped = check_rows(rows, ledger)
        if problems:
            raise FieldFileError(str(path), problems)
        # In the order of the visits (a server may export newest first): the latest visit is the status.
        ledger.decide_many(sorted(decisions, key=lambda d: (d.visited_at is None, d.visited_at or "")))
    report = ImportReport(len(decisions), dict(skipped))
    log.info("%s from %s", report.summary(), path)
    return report
