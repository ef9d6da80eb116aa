"""Reading a CSV of field decisions as spreadsheet programs and form servers write it.

Handled here, before any column means anything:

- the encoding: UTF-8 with or without a byte-order mark (Excel's "CSV UTF-8" writes one), and UTF-16
  with its byte-order mark (Excel's "Unicode text", tab-separated), decoded; anything else (legacy
  code pages, UTF-16 without a mark, a workbook or ZIP file given as CSV) is refused with the fix;
- the separator: ``,`` (ODK Central, fieldtruth's own queue), ``;`` (KoboToolbox's default, and what
  spreadsheet programs write where the comma is the decimal mark) or a tab, chosen as the one that
  splits the header line into the most columns; Excel's ``sep=;`` first line is honoured;
- line endings (Windows ``\\r\\n``, Unix ``\\n``, old Mac ``\\r``) and quoted values spanning lines;
- rows with more values than the header (a separator inside an unquoted note), reported per row;
- ODK Central's download as it comes (a ``.zip``): its main table is read from the archive.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import zipfile
from pathlib import Path
from typing import NamedTuple

from fieldtruth.review.errors import FieldFileError

log = logging.getLogger(__name__)

DELIMITERS: tuple[str, ...] = (",", ";", "\t")
"""Separators tried on the header line; on a tie the first wins."""

MAX_TABLE_BYTES = 256 << 20
"""The largest main table read from a ZIP archive (an export of a few hundred thousand answers)."""

SAVE_AS_UTF8 = (
    "Save it as 'CSV UTF-8' (Excel: File > Save As > CSV UTF-8; LibreOffice: Save As > Text CSV, "
    "character set Unicode (UTF-8))"
)


class CsvRow(NamedTuple):
    """One record of the file: the line it starts on, and its values by header name."""

    line: int
    values: dict[str, str]
    extra: int
    """How many non-empty values the record has beyond the header's columns (0 when it fits)."""


class CsvTable(NamedTuple):
    """A decoded CSV: its header, its records, and how it was read."""

    header: list[str]
    rows: list[CsvRow]
    delimiter: str
    encoding: str


def decode(data: bytes, path: str) -> tuple[str, str]:
    """Decode a CSV file's bytes; return the text and the encoding's name.

    Raises:
        FieldFileError: If the bytes are not UTF-8 or marked UTF-16 text (saying how to re-save them).
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            problem = f"cannot read the file as UTF-16 text: {exc}. {SAVE_AS_UTF8}."
            raise FieldFileError(path, [(0, problem)]) from exc
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise FieldFileError(path, [(0, (
            "expected a CSV text file; got a ZIP or Office file (an .xlsx/.xls workbook?). Export or save "
            "the table as CSV; ODK Central's download is read as it is when its name ends in .zip"))])
    if b"\x00" in data:
        raise FieldFileError(path, [(0, (
            "expected text; the file contains NUL bytes (UTF-16 without a byte-order mark, or not a text "
            f"file). {SAVE_AS_UTF8}"))])
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as exc:
        raise FieldFileError(path, [(0, (
            f"expected UTF-8 text; byte {data[exc.start]:#04x} at offset {exc.start} is not UTF-8 (a legacy "
            f"code page such as Windows-1252?). {SAVE_AS_UTF8}"))]) from exc


def _first_record(text: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    except csv.Error:
        return []


def sniff_delimiter(text: str) -> str:
    """Return the separator (of :data:`DELIMITERS`) that splits the header line into the most columns."""
    counts = [(len(_first_record(text, d)), -i, d) for i, d in enumerate(DELIMITERS)]
    return max(counts)[2]


def parse(text: str, path: str) -> CsvTable:
    """Parse decoded CSV text (see :func:`read_csv_table`)."""
    offset, delimiter = 0, None
    first, _, rest = text.partition("\n")
    if first.strip().lower().startswith("sep=") and len(first.strip()) == 5:
        delimiter, text, offset = first.strip()[4], rest, 1  # Excel's separator hint line
    delimiter = delimiter or sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    header: list[str] = []
    rows: list[CsvRow] = []
    start = 1
    try:
        for record in reader:
            line, start = start + offset, reader.line_num + 1
            if not header:
                header = [h.strip() for h in record]
                if not any(header):
                    header = []  # blank lines before the header
                continue
            if not record:
                continue  # a blank line
            values = dict(zip(header, record, strict=False))
            extra = sum(1 for v in record[len(header):] if v.strip())
            rows.append(CsvRow(line, values, extra))
    except csv.Error as exc:
        raise FieldFileError(path, [(reader.line_num + offset, f"cannot parse the CSV: {exc}")]) from exc
    return CsvTable(header, rows, delimiter, "")


def root_table(path: Path) -> bytes:
    """Return the main CSV of an ODK Central download (.zip): the table with ``SubmissionDate`` and
    ``KEY`` and without ``PARENT_KEY`` (those are repeat tables).

    Raises:
        FieldFileError: If the archive holds no such table, several, or one too large to be a table.
    """
    with zipfile.ZipFile(path) as archive:
        tables = [i for i in archive.infolist() if i.filename.lower().endswith(".csv")]
        roots = []
        for info in tables:
            with archive.open(info) as handle:
                header = handle.readline(1 << 16).decode("utf-8-sig", "replace")
            names = next(csv.reader([header]), [])
            if "SubmissionDate" in names and "KEY" in names and "PARENT_KEY" not in names:
                roots.append(info)
        if len(roots) != 1 or roots[0].file_size > MAX_TABLE_BYTES:
            raise FieldFileError(str(path), [(0, (
                "expected one main table (an ODK Central CSV with SubmissionDate and KEY) in the .zip; "
                f"found {[i.filename for i in roots] or 'none'} among {[i.filename for i in tables]}. Unzip "
                "it and import the main CSV, with --photos pointing at the unzipped folder"))])
        log.info("%s: reading its main table %s", path, roots[0].filename)
        return archive.read(roots[0])


def read_csv_table(path: Path) -> CsvTable:
    """Read a CSV file of field decisions: decode it, find its separator, and parse its records.

    An ODK Central download (``.zip``) is read as its main table (:func:`root_table`).

    Raises:
        FieldFileError: If the file cannot be read, is empty, or is not UTF-8/UTF-16 text (line 0).
    """
    try:
        path = Path(path)
        is_zip = path.suffix.lower() == ".zip" and zipfile.is_zipfile(path)
        data = root_table(path) if is_zip else path.read_bytes()
    except (OSError, zipfile.BadZipFile) as exc:
        raise FieldFileError(str(path), [(0, f"cannot read the file: {exc}")]) from exc
    text, encoding = decode(data, str(path))
    if not text.strip():
        raise FieldFileError(str(path), [(0, (
            "the file is empty: expected a header line naming the columns (at least site_id, decision, "
            "method, reviewer) and one row per decision"))])
    table = parse(text, str(path))._replace(encoding=encoding)
    log.info("read %s: %s, separator %r, %d column(s), %d row(s)", path, encoding, table.delimiter,
             len(table.header), len(table.rows))
    return table
