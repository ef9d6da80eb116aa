"""The declaration of a labour-sector dataset: a small YAML file parsed with pydantic at the edge.

Example (the real KilnEye inventory, see ``docs/examples/kilneye.yaml``)::

    name: kilneye
    source: github.com/ouranonymoussubmission/BrickKilnsNeurIPS24
    licence: CC BY 4.0
    purpose: count kilns per cell for risk scoring; exact sites never shared
    sector: brick_kilns
    files: ["../../../shared/data/kilneye/kilns_*.csv"]
    geometry: {x: lon, y: lat, crs: "EPSG:4326"}
    keep: [kiln_type, state]

The files a declaration names must lie inside its own folder, or in a folder allowed explicitly
(``load_declaration(path, allow_dirs=...)``, the ``FIELDTRUTH_ALLOW_DIRS`` environment variable, or the
command line's ``--allow-dir``): the KilnEye example above is read with
``--allow-dir ../shared/data/kilneye``. Errors name keys and files, never values: a declaration is checked
before anything it names is read.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from fieldtruth.ingest.errors import InputNotFoundError, RefusedInputError, SectorDeclarationError
from fieldtruth.ingest.guard import allowed_dirs, local_file

#: Largest declaration file read, and most data files one declaration may name (globs expanded).
MAX_DECLARATION_BYTES = 1024**2
MAX_FILES = 10_000
_GLOB_CHARS = frozenset("*?[")

log = logging.getLogger(__name__)

Format = Literal["csv", "geojson", "gpkg", "shapefile", "geoparquet"]
SUFFIX_FORMATS: dict[str, Format] = {
    ".csv": "csv",
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
    ".shp": "shapefile",
    ".zip": "shapefile",
    ".parquet": "geoparquet",
    ".geoparquet": "geoparquet",
}


class GeometrySpec(BaseModel):
    """Where the geometry is: ``x``/``y`` columns of a CSV, or the file's own geometry; and its CRS."""

    model_config = ConfigDict(extra="forbid")
    crs: str = Field(description="CRS of the coordinates, e.g. EPSG:4326 (lon/lat) or EPSG:32644.")
    x: str | None = Field(default=None, description="CSV column of x / longitude.")
    y: str | None = Field(default=None, description="CSV column of y / latitude.")


class PersonalColumn(BaseModel):
    """A column holding personal data, kept only because a reason was declared."""

    model_config = ConfigDict(extra="forbid")
    column: str
    reason: str = Field(min_length=10, description="Why this personal data is needed (required).")


class SectorDeclaration(BaseModel):
    """What a sector dataset is, where it comes from, and which of its columns may be kept."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    source: str = Field(min_length=1)
    licence: str = Field(min_length=1)
    purpose: str = Field(min_length=1)
    sector: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="brick_kilns, fishing, ...")
    files: list[str] = Field(min_length=1, description="Paths or globs, relative to the declaration.")
    format: Format | None = None
    layer: str | None = None
    geometry: GeometrySpec
    keep: list[str] = Field(default_factory=list)
    personal: list[PersonalColumn] = Field(default_factory=list)
    on_bad_rows: Literal["error", "report"] = "error"
    on_duplicates: Literal["drop", "keep"] = "drop"
    object_size_m: float | None = Field(
        default=None, gt=0, le=10_000,
        description="Ground size of one site (metres): the side of the square label each point becomes "
                    "when `fieldtruth dataset build` makes training scenes from the dataset.")
    object_class: str | None = Field(
        default=None, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$",
        description="Class name of those labels (a detector's class); the sector when absent.")
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _allow_dirs: tuple[Path, ...] = PrivateAttr(default=())

    @property
    def base_dir(self) -> Path:
        """The declaration's folder: relative ``files`` resolve against it, and every file lies inside it
        (or in a folder allowed explicitly)."""
        return self._base_dir

    @field_validator("files", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    def personal_columns(self) -> dict[str, str]:
        """Return column -> declared reason of the personal-data columns."""
        return {p.column: p.reason for p in self.personal}

    def kept_columns(self) -> list[str]:
        """Return the declared columns to keep, personal ones included, without duplicates."""
        return list(dict.fromkeys([*self.keep, *self.personal_columns()]))

    def resolve_files(self) -> list[Path]:
        """Return the data files the declaration names, globs expanded, sorted.

        Raises:
            InputNotFoundError: If a path or glob matches no file.
            RefusedInputError: If a path (or a glob's folder) lies outside the declaration's folder and the
                folders allowed explicitly, or a glob matches over :data:`MAX_FILES` files.
        """
        within = (self._base_dir, *self._allow_dirs)
        found: list[Path] = []
        for entry in self.files:
            pattern = Path(entry) if Path(entry).is_absolute() else self._base_dir / entry
            self._check_glob_folder(entry, pattern, within)
            matches = sorted(glob.glob(str(pattern)))
            if not matches:
                raise InputNotFoundError(
                    f"expected declaration {self.name!r} file {entry!r} to exist; nothing matches "
                    f"{str(pattern)!r}. "
                    "Fix `files:` (paths are relative to the declaration file)."
                )
            if len(found) + len(matches) > MAX_FILES:
                raise RefusedInputError(f"declaration {self.name!r} names over {MAX_FILES} files; refused")
            what = f"declaration {self.name!r} file"
            found.extend(local_file(m, within=within, what=what) for m in matches)
        return found

    def _check_glob_folder(self, entry: str, pattern: Path, within: Sequence[Path]) -> None:
        """Refuse a glob whose fixed folder lies outside ``within`` before globbing it (``/*/*`` would
        otherwise walk the whole machine); the files it matches are checked one by one afterwards."""
        parts = pattern.parts
        first_glob = next((i for i, part in enumerate(parts) if _GLOB_CHARS & set(part)), None)
        if first_glob is None:
            return
        folder = Path(*parts[:first_glob]).resolve()
        folders = (*(w.resolve() for w in within), *allowed_dirs())
        if not any(folder.is_relative_to(f) for f in folders):
            raise RefusedInputError(
                f"declaration {self.name!r} file {entry!r} lies outside {[str(f) for f in folders]!r}; a "
                "declaration may only name files inside its own folder (allow another folder with "
                "--allow-dir or FIELDTRUTH_ALLOW_DIRS, or load_declaration(..., allow_dirs=...))"
            )

    def format_of(self, path: Path) -> Format:
        """Return the declared format, or the one implied by the file suffix."""
        if self.format is not None:
            return self.format
        fmt = SUFFIX_FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise SectorDeclarationError(
                f"expected a file ending in one of {sorted(SUFFIX_FORMATS)}; got {str(path)!r}. "
                "Declare `format:` (csv, geojson, gpkg, shapefile, geoparquet)."
            )
        return fmt


def load_declaration(path: Path | str, *, allow_dirs: Sequence[Path | str] = ()) -> SectorDeclaration:
    """Parse a sector dataset declaration (YAML).

    Args:
        path: The YAML file; its folder is the base of relative ``files``, and holds them.
        allow_dirs: Further folders the declared files may lie in (with those of ``FIELDTRUTH_ALLOW_DIRS``).

    Returns:
        The validated declaration.

    Raises:
        InputNotFoundError: If the file does not exist.
        SectorDeclarationError: If it is not YAML or does not match the declaration schema (unknown keys,
            keys that are not text, missing or malformed fields); the message names keys, never values.
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"expected a sector declaration file; {str(path)!r} does not exist.")
    if path.stat().st_size > MAX_DECLARATION_BYTES:
        raise SectorDeclarationError(
            f"expected a declaration under {MAX_DECLARATION_BYTES} bytes; {str(path)!r} is larger."
        )
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SectorDeclarationError(f"expected YAML in {str(path)!r}; parsing failed{_where(exc)}.") from exc
    except UnicodeDecodeError as exc:
        raise SectorDeclarationError(f"expected UTF-8 text in {str(path)!r}; byte {exc.start} is not.") \
            from exc
    if not isinstance(document, dict):
        raise SectorDeclarationError(f"expected a mapping in {str(path)!r}; got {type(document).__name__}.")
    try:
        decl = SectorDeclaration.model_validate(document)
    except ValidationError as exc:
        raise SectorDeclarationError(
            f"declaration {str(path)!r} is invalid: {_problems(exc)}. See docs/risk.md for the fields."
        ) from exc
    decl._base_dir = path.resolve().parent
    decl._allow_dirs = tuple(Path(d).resolve() for d in allow_dirs)
    return decl


def _where(exc: yaml.YAMLError) -> str:
    """Where YAML parsing failed and why, without the snippet of the file PyYAML's message quotes."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{at} ({problem})" if problem else at


def _problems(exc: ValidationError, most: int = 5) -> str:
    """The validation errors as one line: where (keys, not values) and what is wrong."""
    listed = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(_shown(part) for part in error["loc"]) or "the document"
        if error["type"] == "extra_forbidden":
            listed.append(f"unknown key '{where}'")
        elif error["type"] == "invalid_key":
            listed.append(f"key '{where}' is not text")
        else:
            listed.append(f"'{where}': {error['msg']}")
    more = f" (and {len(listed) - most} more)" if len(listed) > most else ""
    return "; ".join(listed[:most]) + more


def _shown(part: Any, limit: int = 60) -> str:
    """A key or index of a location: as is when it is a plain name or a number, else its ``repr``."""
    number = isinstance(part, int) and not isinstance(part, bool)
    plain = number or (isinstance(part, str) and part.isidentifier())
    text = str(part) if plain else repr(part)
    return text if len(text) <= limit else text[: limit - 3] + "..."
