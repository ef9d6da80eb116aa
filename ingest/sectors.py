"""Labour-sector datasets in: declared, minimal, checked, and never silently changed.

A sector dataset (a kiln inventory, known fishing camps, ...) is described by a YAML declaration
(:func:`load_declaration`, fields in :class:`SectorDeclaration`). Reading it keeps only the declared
columns (the drop is reported), refuses kept columns that look like personal data unless declared with a
reason, repairs invalid geometries (``make_valid``) and reports them with row numbers, reports and drops
duplicates, and stops on malformed rows with an error naming the file and the row (or, with
``on_bad_rows: report``, drops and reports them). A declared CRS whose area of use does not hold the
coordinates is an error. Large files are read in partitions (dask / dask-geopandas), one at a time.

Example::

    decl = load_declaration("docs/examples/kilneye.yaml")
    dataset = read_sectors(decl)          # small data: one GeoDataFrame (EPSG:4326)
    for chunk in iter_sector_chunks(decl, report=SectorReport.for_declaration(decl)):
        ...                               # large data: bounded memory
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from fieldtruth.ingest._sector_checks import (
    FileReport,
    csv_geometry,
    duplicate_positions,
    handle_bad_rows,
    overlong_values,
    select_columns,
    to_lonlat,
    vector_geometry,
)
from fieldtruth.ingest._sector_decl import SectorDeclaration, load_declaration
from fieldtruth.ingest._sector_files import PARTITION_BYTES, iter_raw_chunks
from fieldtruth.ingest._zip import check_zip
from fieldtruth.ingest.errors import EmptySectorDataError

log = logging.getLogger(__name__)

__all__ = [
    "FileReport",
    "SectorDataset",
    "SectorDeclaration",
    "SectorReport",
    "check_zip",
    "iter_sector_chunks",
    "load_declaration",
    "read_sectors",
]


@dataclass
class SectorReport:
    """Provenance and the fate of every row and column of one declared dataset."""

    name: str
    sector: str
    source: str
    licence: str
    purpose: str
    files: list[FileReport] = field(default_factory=list)

    @classmethod
    def for_declaration(cls, decl: SectorDeclaration) -> SectorReport:
        """Start an empty report for ``decl``."""
        return cls(decl.name, decl.sector, decl.source, decl.licence, decl.purpose)

    @property
    def sites(self) -> int:
        """Rows kept over all files."""
        return sum(f.rows_kept for f in self.files)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (column names and row labels, never values)."""
        return {
            "name": self.name, "sector": self.sector, "source": self.source, "licence": self.licence,
            "purpose": self.purpose, "sites": self.sites,
            "files": [vars(f) | {"path": Path(f.path).name} for f in self.files],
        }


class SectorDataset(NamedTuple):
    """A whole sector dataset in memory: kept columns, ``sector``, geometry in EPSG:4326."""

    frame: gpd.GeoDataFrame
    report: SectorReport


def iter_sector_chunks(decl: SectorDeclaration, *, report: SectorReport | None = None,
                       partition_bytes: int = PARTITION_BYTES) -> Iterator[gpd.GeoDataFrame]:
    """Yield the checked rows of a declared dataset in chunks (EPSG:4326, kept columns + ``sector``).

    Args:
        decl: The declaration.
        report: Filled with what was dropped, repaired and refused (one :class:`FileReport` per file).
        partition_bytes: Files larger than this are read in partitions, one in memory at a time.

    Raises:
        InputNotFoundError: If a declared file is missing.
        EmptySectorDataError: If a file holds no rows.
        SectorDataError: On malformed rows (unless ``on_bad_rows: report``) or unreadable files.
        SectorCrsError: If the declared CRS does not fit the coordinates.
        PersonalDataError: If a kept column looks like personal data without a declared reason.
        UnsafeArchiveError: If a zip archive is refused.
    """
    report = report if report is not None else SectorReport.for_declaration(decl)
    seen: set[int] = set()
    for path in decl.resolve_files():
        fmt = decl.format_of(path)
        file_report = FileReport(str(path))
        report.files.append(file_report)
        for raw in iter_raw_chunks(decl, path, fmt, partition_bytes):
            chunk = _clean_chunk(decl, path, fmt, raw.frame, raw.first_row, file_report, seen)
            if len(chunk):
                yield chunk
        if file_report.rows_read == 0:
            raise EmptySectorDataError(
                f"expected rows in {str(path)!r}; it has a header or layer but no rows.")
        _log_file(file_report)


def read_sectors(decl: SectorDeclaration | Path | str, *,
                 partition_bytes: int = PARTITION_BYTES) -> SectorDataset:
    """Read a whole declared dataset (a declaration or the path of its YAML) into one GeoDataFrame.

    Raises:
        The errors of :func:`iter_sector_chunks`.
    """
    if not isinstance(decl, SectorDeclaration):
        decl = load_declaration(decl)
    report = SectorReport.for_declaration(decl)
    chunks = list(iter_sector_chunks(decl, report=report, partition_bytes=partition_bytes))
    columns = [*decl.kept_columns(), "sector"]
    frame = (
        gpd.GeoDataFrame(pd.concat(chunks, ignore_index=True), geometry="geometry", crs="EPSG:4326")
        if chunks else gpd.GeoDataFrame({c: [] for c in columns}, geometry=[], crs="EPSG:4326")
    )
    return SectorDataset(frame, report)


def _clean_chunk(decl: SectorDeclaration, path: Path, fmt: str, frame: pd.DataFrame, first_row: int,
                 report: FileReport, seen: set[int]) -> gpd.GeoDataFrame:
    """Check one chunk and return its kept rows and columns in EPSG:4326."""
    report.rows_read += len(frame)
    geometry_columns = {decl.geometry.x, decl.geometry.y} - {None} if fmt == "csv" else set()
    kept = select_columns(decl, path, frame, report, geometry_columns)  # type: ignore[arg-type]
    problems: dict[int, str] = overlong_values(frame, kept)
    if fmt == "csv":
        x, y, coordinate_problems = csv_geometry(decl, path, frame)
        problems = {**coordinate_problems, **problems}
        lon, lat = to_lonlat(decl, path, x, y, problems, fmt)
        geometry = gpd.GeoSeries(shapely.points(lon, lat), crs="EPSG:4326")
    else:
        geoms = vector_geometry(decl, path, frame, report, first_row, problems)  # type: ignore[arg-type]
        points = shapely.point_on_surface(geoms.to_numpy())
        x, y = shapely.get_x(points), shapely.get_y(points)
        to_lonlat(decl, path, np.where(np.isnan(x), np.nan, x), y, problems, fmt)
        geometry = geoms.to_crs("EPSG:4326").reset_index(drop=True)
    bad = handle_bad_rows(decl, path, fmt, first_row, problems, report)
    out = gpd.GeoDataFrame(frame[kept].reset_index(drop=True), geometry=geometry.reset_index(drop=True))
    out["sector"] = decl.sector
    out = out.drop(index=bad)
    dups = duplicate_positions(out, kept, seen)
    if len(dups):
        report.duplicate_rows.extend(
            f"{str(path)!r} "
            + (f"line {first_row + int(i) + 2}" if fmt == "csv" else f"feature {first_row + int(i) + 1}")
            for i in out.index[dups]
        )
        if decl.on_duplicates == "drop":
            out = out.drop(index=out.index[dups])
    report.rows_kept += len(out)
    return out.reset_index(drop=True)


def _log_file(report: FileReport) -> None:
    log.info("%s: %d row(s) read, %d kept", report.path, report.rows_read, report.rows_kept)
    if report.dropped_columns:
        log.info("%s: dropped undeclared column(s) %s", report.path, report.dropped_columns)
    if report.personal_dropped:
        log.warning("%s: dropped column(s) that look like personal data: %s", report.path,
                    report.personal_dropped)
    for what in ("bad_rows", "repaired_rows", "duplicate_rows"):
        rows = getattr(report, what)
        if rows:
            log.warning("%s: %d %s, first: %s", report.path, len(rows), what.replace("_", " "), rows[:3])
