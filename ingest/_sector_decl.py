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
"""

from __future__ import annotations

import glob
import logging
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fieldtruth.ingest.errors import InputNotFoundError, SectorDeclarationError

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
    base_dir: Path = Field(default=Path("."), exclude=True)

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
        """
        found: list[Path] = []
        for entry in self.files:
            pattern = entry if Path(entry).is_absolute() else str(self.base_dir / entry)
            matches = sorted(Path(p) for p in glob.glob(pattern))
            if not matches:
                raise InputNotFoundError(
                    f"expected declaration {self.name!r} file {entry!r} to exist; nothing matches {pattern!r}. "
                    "Fix `files:` (paths are relative to the declaration file)."
                )
            found.extend(matches)
        return found

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


def load_declaration(path: Path | str) -> SectorDeclaration:
    """Parse a sector dataset declaration (YAML).

    Args:
        path: The YAML file; its folder is the base of relative ``files``.

    Returns:
        The validated declaration.

    Raises:
        InputNotFoundError: If the file does not exist.
        SectorDeclarationError: If it is not YAML or does not match the declaration schema.
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"expected a sector declaration file; {str(path)!r} does not exist.")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SectorDeclarationError(f"expected YAML in {str(path)!r}; parsing failed: {exc}") from exc
    if not isinstance(document, dict):
        raise SectorDeclarationError(f"expected a mapping in {str(path)!r}; got {type(document).__name__}.")
    try:
        return SectorDeclaration(**document, base_dir=path.resolve().parent)
    except ValidationError as exc:
        raise SectorDeclarationError(
            f"declaration {str(path)!r} is invalid: {exc}. See docs/risk.md for the fields."
        ) from exc
