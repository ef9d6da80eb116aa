"""Checks of sector dataset rows: personal data, malformed rows, CRS area of use, geometry, duplicates.

Error messages name the file, the row and the declared column, and never quote the file's content
(values, or the names in its header). Row labels are ``line N`` for CSV files (the header is line 1) and
``feature N`` (1-based) otherwise. Every check runs in time linear in its input: patterns are written so
that no input makes them backtrack over it more than once, and a kept value longer than
:data:`MAX_VALUE_CHARS` makes its row malformed (see ``benchmarks/bench_checks.py``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from fieldtruth.ingest._sector_decl import SectorDeclaration
from fieldtruth.ingest.errors import (
    PersonalDataError,
    SectorCrsError,
    SectorDataError,
    SectorDeclarationError,
)

log = logging.getLogger(__name__)

_PERSONAL_NAME = re.compile(
    r"(^|_)(names?|owners?|surname|(first|last|full|given|family)_?name|phones?|tel|telephone|mobile|cell|"
    r"e?_?mail|contact|address|dob|birth_?date|date_of_birth|aadhaa?r|passport|ssn|"
    r"id_?(number|no|num|card)|national_?id|voter_?id|pan_?(no|number|card))($|_)"
)
_PERSONAL_SUBSTRINGS = ("phone", "mobile", "email", "aadha", "passport", "surname", "ownername")
# An address starts where a run of characters other than @ and white space starts (the look-behind): a
# search then tries each run once, instead of once from every character of it (quadratic in its length).
_EMAIL = re.compile(r"(?<![^@\s])[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+?[\d\s\-().]{9,}")
_MARGIN_DEG = 0.5
#: Share of rows outside the CRS's area of use above which the CRS itself is called wrong.
WRONG_CRS_SHARE = 0.5
_MAX_LISTED = 5
#: Longest text value kept; a longer one makes its row malformed (no sector attribute needs more).
MAX_VALUE_CHARS = 10_000


@dataclass
class FileReport:
    """What happened to one file's rows and columns; nothing is dropped without an entry here."""

    path: str
    rows_read: int = 0
    rows_kept: int = 0
    dropped_columns: list[str] = field(default_factory=list)
    personal_dropped: list[str] = field(default_factory=list)
    bad_rows: list[str] = field(default_factory=list)
    repaired_rows: list[str] = field(default_factory=list)
    duplicate_rows: list[str] = field(default_factory=list)


def looks_personal(column: str) -> bool:
    """Return True when a column name looks like personal data (names, phones, e-mail, ID numbers)."""
    norm = re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_")
    return bool(_PERSONAL_NAME.search(norm)) or any(s in norm.replace("_", "") for s in _PERSONAL_SUBSTRINGS)


def personal_content_rows(values: pd.Series) -> np.ndarray:
    """Return the positions of values that look like an e-mail address or a phone number."""
    text = values.dropna().astype(str).str.strip()
    digits = text.str.count(r"\d")
    phone = text.str.fullmatch(_PHONE) & (digits >= 10) & ~text.str.contains(r"\d\.\d", regex=True)
    email = text.str.contains(_EMAIL)
    hits = text.index[(phone | email).to_numpy()]
    return values.index.get_indexer(hits)


def overlong_values(frame: pd.DataFrame, columns: list[str]) -> dict[int, str]:
    """Positions of rows whose text in one of ``columns`` is over :data:`MAX_VALUE_CHARS`, with why."""
    problems: dict[int, str] = {}
    for column in columns:
        series = frame[column]
        if not (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
            continue
        lengths = series.map(lambda v: len(v) if isinstance(v, str) else 0).to_numpy()
        for pos in np.flatnonzero(lengths > MAX_VALUE_CHARS):
            problems.setdefault(int(pos), f"{column!r} holds over {MAX_VALUE_CHARS} characters")
    return problems


def row_label(path: Path, fmt: str, index: int) -> str:
    """Name a row for a message: ``'kilns.csv' line 8`` or ``'sites.gpkg' feature 7``."""
    return f"{str(path)!r} line {index + 2}" if fmt == "csv" else f"{str(path)!r} feature {index + 1}"


def select_columns(decl: SectorDeclaration, path: Path, frame: pd.DataFrame, report: FileReport,
                   geometry_columns: set[str]) -> list[str]:
    """Check the declared columns against the file and personal-data rules; return the columns to keep.

    Raises:
        SectorDeclarationError: If a declared column is absent.
        PersonalDataError: If a kept column looks personal (by name or content) without a declared reason.
    """
    personal = decl.personal_columns()
    kept = decl.kept_columns()
    present = [c for c in frame.columns if c not in geometry_columns and c != "geometry"]
    missing = [c for c in kept if c not in present]
    if missing:
        raise SectorDeclarationError(
            f"expected declared column(s) {missing!r} in {str(path)!r}; none of its {len(present)} other "
            "column(s) has that name (its header is not shown). Fix `keep:`/`personal:` in the declaration."
        )
    for column in kept:
        if column in personal:
            continue
        if looks_personal(column):
            raise PersonalDataError(
                f"expected no personal data in kept columns; {column!r} of {str(path)!r} looks like personal "
                "data. Remove it from `keep:`, or declare it under `personal:` with a `reason:`."
            )
        series = frame[column]
        textual = pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)
        hits = personal_content_rows(series) if textual else []
        if len(hits):
            where = row_label(path, "csv" if path.suffix.lower() == ".csv" else "", int(hits[0]))
            raise PersonalDataError(
                f"expected no personal data in kept columns; column {column!r} holds values that look like "
                f"phone numbers or e-mail addresses ({len(hits)} row(s), first at {where}). Remove it from "
                "`keep:`, or declare it under `personal:` with a `reason:`."
            )
    if not report.dropped_columns:
        report.dropped_columns = [c for c in present if c not in kept]
        report.personal_dropped = [c for c in report.dropped_columns if looks_personal(c)]
    return kept


def _parse_crs(decl: SectorDeclaration) -> CRS:
    try:
        return CRS.from_user_input(decl.geometry.crs)
    except CRSError as exc:
        raise SectorCrsError(
            f"expected a CRS such as 'EPSG:4326' in declaration {decl.name!r}; got {decl.geometry.crs!r}."
        ) from exc


def csv_geometry(decl: SectorDeclaration, path: Path,
                 frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Parse the x/y columns; return x, y (NaN where bad) and position -> problem for malformed rows."""
    spec = decl.geometry
    if spec.x is None or spec.y is None:
        raise SectorDeclarationError(
            f"expected `geometry: {{x: ..., y: ...}}` for CSV {str(path)!r}; got {spec!r}.")
    for column in (spec.x, spec.y):
        if column not in frame.columns:
            raise SectorDeclarationError(
                f"expected coordinate column {column!r} in {str(path)!r}; none of its {len(frame.columns)} "
                "column(s) has that name (its header is not shown). Fix `geometry:` in the declaration."
            )
    problems: dict[int, str] = {}
    out = []
    for column in (spec.x, spec.y):
        raw = frame[column]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        for pos in np.flatnonzero(raw.isna().to_numpy()):
            problems.setdefault(int(pos), f"missing coordinate {column!r}")
        for pos in np.flatnonzero(np.isnan(values) & raw.notna().to_numpy()):
            problems.setdefault(int(pos), f"{column!r} is not a number")
        out.append(values)
    return out[0], out[1], problems


def to_lonlat(decl: SectorDeclaration, path: Path, x: np.ndarray, y: np.ndarray,
              problems: dict[int, str], fmt: str) -> tuple[np.ndarray, np.ndarray]:
    """Transform to lon/lat and flag rows outside the declared CRS's area of use.

    Raises:
        SectorCrsError: If most rows lie outside the area of use (the declared CRS is wrong).
    """
    crs = _parse_crs(decl)
    if crs.equals(CRS.from_epsg(4326), ignore_axis_order=True):
        lon, lat = x.copy(), y.copy()
    else:
        lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(x, y, errcheck=False)
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    area = crs.area_of_use
    west, south, east, north = area.bounds if area else (-180.0, -90.0, 180.0, 90.0)
    in_lon = ((lon >= west - _MARGIN_DEG) & (lon <= east + _MARGIN_DEG) if west <= east
              else (lon >= west) | (lon <= east))
    inside = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    inside &= in_lon & (lat >= south - _MARGIN_DEG) & (lat <= north + _MARGIN_DEG)
    parsed = np.isfinite(x) & np.isfinite(y)
    outside = np.flatnonzero(parsed & ~inside)
    if parsed.sum() and len(outside) > WRONG_CRS_SHARE * parsed.sum():
        first = row_label(path, fmt, int(outside[0]))
        raise SectorCrsError(
            f"expected coordinates inside the area of use of the declared CRS {decl.geometry.crs!r} "
            f"(lon {west:g}..{east:g}, lat {south:g}..{north:g}); {len(outside)} of {int(parsed.sum())} "
            f"rows of {str(path)!r} lie outside (first: {first}). "
            "Declare the CRS the coordinates are really in (`geometry: crs:`)."
        )
    for pos in outside:
        problems.setdefault(int(pos), f"coordinates outside the area of use of {decl.geometry.crs!r}")
    return lon, lat


def vector_geometry(decl: SectorDeclaration, path: Path, frame: gpd.GeoDataFrame, report: FileReport,
                    first_row: int, problems: dict[int, str]) -> gpd.GeoSeries:
    """Check the file CRS against the declaration, repair invalid geometries, flag missing ones."""
    declared = _parse_crs(decl)
    if frame.crs is None:
        frame = frame.set_crs(declared)
    elif not CRS.from_user_input(frame.crs).equals(declared, ignore_axis_order=True):
        raise SectorCrsError(
            f"expected {str(path)!r} in the declared CRS {decl.geometry.crs!r}; the file says "
            f"{frame.crs.to_string()!r}. Fix `geometry: crs:` in the declaration."
        )
    geoms = frame.geometry.to_numpy()
    for pos in np.flatnonzero(shapely.is_missing(geoms) | shapely.is_empty(geoms)):
        problems.setdefault(int(pos), "missing or empty geometry")
    invalid = np.flatnonzero(~shapely.is_valid(geoms) & ~shapely.is_missing(geoms))
    if len(invalid):
        geoms = geoms.copy()
        geoms[invalid] = shapely.make_valid(geoms[invalid])
        for pos in invalid:
            if shapely.is_empty(geoms[pos]):
                problems.setdefault(int(pos), "invalid geometry that make_valid could not repair")
            else:
                report.repaired_rows.append(row_label(path, "", first_row + int(pos)))
    return gpd.GeoSeries(geoms, crs=frame.crs, index=frame.index)


def handle_bad_rows(decl: SectorDeclaration, path: Path, fmt: str, first_row: int,
                    problems: dict[int, str], report: FileReport) -> np.ndarray:
    """Raise on malformed rows, or (``on_bad_rows: report``) record them; return their positions."""
    positions = np.array(sorted(problems), dtype=np.int64)
    if not len(positions):
        return positions
    listed = [f"{row_label(path, fmt, first_row + int(p))}: {problems[int(p)]}" for p in positions]
    if decl.on_bad_rows == "error":
        more = f" (and {len(listed) - _MAX_LISTED} more)" if len(listed) > _MAX_LISTED else ""
        raise SectorDataError(
            f"expected well-formed rows; {len(listed)} malformed: " + "; ".join(listed[:_MAX_LISTED]) + more
            + ". Fix the file, or declare `on_bad_rows: report` to drop and report them."
        )
    report.bad_rows.extend(listed)
    return positions


def duplicate_positions(frame: gpd.GeoDataFrame, columns: list[str], seen: set[int]) -> np.ndarray:
    """Return positions of rows equal (kept columns and geometry) to an earlier row, updating ``seen``."""
    keys = pd.DataFrame({c: frame[c].astype(str) for c in columns})
    keys["__wkb"] = shapely.to_wkb(frame.geometry.to_numpy(), hex=True)
    hashes = pd.util.hash_pandas_object(keys, index=False).to_numpy()
    dup = np.zeros(len(hashes), dtype=bool)
    for i, h in enumerate(hashes.tolist()):
        if h in seen:
            dup[i] = True
        else:
            seen.add(h)
    return np.flatnonzero(dup)
