"""A point inventory of sites (kilns, camps, ...) as training labels: a sector declaration, read with
its rules, plus the size and class of one site.

The declaration is the one risk scoring reads (:mod:`fieldtruth.ingest.sectors`), with two more keys:
``object_size_m`` (required here: the side of the square label a point becomes) and ``object_class``
(the label's class; the declared ``sector`` when absent). Its personal-data rules hold, stricter: a
training dataset keeps no personal column at all (declared with a reason, or kept under a name that looks
personal), as a detector learns positions and a class only; values that look personal in other kept
columns are refused by the sector rules.

Example::

    inventory = read_point_inventory("kilneye.yaml", allow_dirs=["../shared/data/kilneye"])
    inventory.frame            # GeoDataFrame of points, EPSG:4326, kept columns
    inventory.provenance()     # name, source, licence, sha256 of the files, sites: no coordinates
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely

from fieldtruth.ingest._sector_checks import looks_personal
from fieldtruth.ingest.errors import PersonalDataError, SectorDeclarationError
from fieldtruth.ingest.provenance import file_sha256
from fieldtruth.ingest.sectors import load_declaration, read_sectors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PointInventory:
    """Declared site positions ready to become labels.

    Attributes:
        frame: one point per site (EPSG:4326) with the declared kept columns.
        name: the declaration's name. source: where the data comes from. licence: its licence.
        sha256: one checksum over the data files (each file's sha256, in sorted path order).
        object_size_m: side of a site's square label on the ground, metres.
        object_class: class name of the labels.
        declaration: the declaration file.
    """

    frame: gpd.GeoDataFrame
    name: str
    source: str
    licence: str
    sha256: str
    object_size_m: float
    object_class: str
    declaration: Path

    def provenance(self) -> dict[str, Any]:
        """JSON-ready provenance: what the inventory is, never where its sites are."""
        return {"name": self.name, "source": self.source, "licence": self.licence, "sha256": self.sha256,
                "sites": len(self.frame), "object_size_m": self.object_size_m,
                "object_class": self.object_class}


def read_point_inventory(path: Path | str, *, allow_dirs: Sequence[Path | str] = ()) -> PointInventory:
    """Read a declared point inventory for training (see the module docstring).

    Args:
        path: the declaration (YAML).
        allow_dirs: further folders its files may lie in.

    Raises:
        PersonalDataError: the declaration keeps a personal column (declared or looking like one).
        SectorDeclarationError: no ``object_size_m``; and the errors of
            :func:`fieldtruth.ingest.sectors.read_sectors`.
    """
    path = Path(path)
    decl = load_declaration(path, allow_dirs=allow_dirs)
    columns = [p.column for p in decl.personal] + [c for c in decl.keep if looks_personal(c)]
    if columns:
        raise PersonalDataError(
            f"declaration {str(path)!r} keeps personal column(s) {sorted(set(columns))!r} (declared under "
            "`personal:` or named like personal data); training labels need site positions and a class "
            "only: remove them from `keep:` and `personal:`")
    if decl.object_size_m is None:
        raise SectorDeclarationError(
            f"declaration {str(path)!r} has no `object_size_m`; add the ground size of one site in metres "
            "(e.g. `object_size_m: 120` for a brick kiln), the side of the square label each point becomes")
    dataset = read_sectors(decl)
    frame = dataset.frame
    if len(frame) and not (frame.geometry.geom_type == "Point").all():
        frame = frame.set_geometry(shapely.centroid(frame.geometry.to_numpy()), crs="EPSG:4326")
    files = decl.resolve_files()
    digest = hashlib.sha256()
    for file in files:
        digest.update(file_sha256(file).encode())
    log.info("inventory %s: %d site(s) from %d file(s)", decl.name, len(frame), len(files))
    return PointInventory(frame.reset_index(drop=True), decl.name, decl.source, decl.licence,
                          digest.hexdigest(), float(decl.object_size_m), decl.object_class or decl.sector,
                          path.resolve())
