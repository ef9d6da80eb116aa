"""Seeded generators of sector datasets, declarations, hostile archives and a run folder for the kilns.

Sites are drawn inside the run folder of :mod:`fieldtruth.tests.data.runfolder` (about 25.4-25.6 N,
86.9-87.1 E). Personal-data columns hold generated names, phone numbers and e-mail addresses whose
values the tests grep for in every file written.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import yaml
from shapely.geometry import box

from fieldtruth.ingest.sectors import SectorDeclaration, load_declaration
from fieldtruth.runfiles import RunFiles
from fieldtruth.tests.data.shared import REPO, shared_data_root

#: The declaration of the real KilnEye inventory that the docs show.
KILNEYE_EXAMPLE = REPO / "docs" / "examples" / "kilneye.yaml"
LON = (86.92, 87.08)
LAT = (25.42, 25.58)
FIRST = ("Asha", "Ravi", "Meena", "Suresh", "Lakshmi", "Imran", "Pooja", "Gopal")
LAST = ("Kumar", "Devi", "Sharma", "Ansari", "Yadav", "Das")


def sites_frame(n: int = 200, seed: int = 0, *, personal: bool = False) -> pd.DataFrame:
    """Return ``n`` seeded sites: lon, lat, kiln_type, capacity, and optionally owner, phone, email."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "kiln_type": rng.choice(["FCBK", "Zigzag"], n),
        "lon": np.round(rng.uniform(*LON, n), 6),
        "lat": np.round(rng.uniform(*LAT, n), 6),
        "capacity": rng.integers(100, 900, n),
    })
    if personal:
        frame["owner_name"] = [f"{FIRST[i % 8]} {LAST[(i * 7) % 6]}zq{i}" for i in range(n)]
        frame["phone"] = [f"+91 98{rng.integers(10_000_000, 99_999_999)}" for _ in range(n)]
        frame["email"] = [f"owner{i}.zq@example.org" for i in range(n)]
    return frame


def personal_values(frame: pd.DataFrame) -> list[bytes]:
    """The personal values of :func:`sites_frame` (``personal=True``), as bytes to grep for."""
    values = [*frame["owner_name"], *frame["phone"], *frame["email"]]
    return [str(v).encode() for v in values]


def write_declaration(path: Path, files: list[str], **overrides: Any) -> Path:
    """Write a declaration YAML for generated kiln sites (CSV lon/lat, EPSG:4326), with overrides."""
    document: dict[str, Any] = {
        "name": "generated-kilns", "source": "tests/data/sectors.py (seeded)", "licence": "CC0-1.0",
        "purpose": "tests of sector ingest", "sector": "brick_kilns", "files": files,
        "geometry": {"x": "lon", "y": "lat", "crs": "EPSG:4326"}, "keep": ["kiln_type"],
    }
    document.update(overrides)
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def sites_gdf(n: int = 50, seed: int = 0, crs: str = "EPSG:4326") -> gpd.GeoDataFrame:
    """Seeded sites as small square polygons (about 100 m), in ``crs``."""
    frame = sites_frame(n, seed)
    geoms = [box(x - 0.0005, y - 0.0005, x + 0.0005, y + 0.0005)
             for x, y in zip(frame.lon, frame.lat, strict=True)]
    return gpd.GeoDataFrame(frame[["kiln_type", "capacity"]], geometry=geoms, crs="EPSG:4326").to_crs(crs)


def zipped_shapefile(path: Path, gdf: gpd.GeoDataFrame, work: Path) -> Path:
    """Write ``gdf`` as a shapefile in ``work`` and zip its parts (flat) into ``path``."""
    work.mkdir(parents=True, exist_ok=True)
    gdf.to_file(work / "sites.shp")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in sorted(work.glob("sites.*")):
            archive.write(part, part.name)
    return path


def traversal_zip(path: Path) -> Path:
    """A zip whose member escapes with ``../``."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("sites.shp", b"\0" * 100)
        archive.writestr("../../evil.txt", b"escaped")
    return path


def bomb_zip(path: Path, megabytes: int = 64) -> Path:
    """A zip of one highly compressed member (``megabytes`` of zeros, ratio about 1000)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("sites.dbf", "w") as member:
            block = b"\0" * (1 << 20)
            for _ in range(megabytes):
                member.write(block)
        archive.writestr("sites.shp", b"\0" * 100)
    return path


def kiln_coverage(bounds: tuple[float, float, float, float] = (73.5, 21.5, 90.5, 33.0), step: float = 1.0,
                  not_covered: tuple[tuple[int, int], ...] = ((0, 0), (5, 3), (12, 8))) -> gpd.GeoDataFrame:
    """Tiles of ``step`` degrees over the KilnEye states; tiles at the given (col, row) are not covered."""
    rows = []
    x0, y0, x1, y1 = bounds
    for c, x in enumerate(np.arange(x0, x1, step)):
        for r, y in enumerate(np.arange(y0, y1, step)):
            status = "not covered" if (c, r) in not_covered else "covered"
            rows.append({"tile_id": f"k{c:02d}{r:02d}", "valid_fraction": 1.0 if status == "covered" else 0.0,
                         "status": status, "error": None, "geometry": box(x, y, x + step, y + step)})
    return gpd.GeoDataFrame(rows, crs="EPSG:4326")


def kilneye_declaration() -> SectorDeclaration:
    """``docs/examples/kilneye.yaml``, its files read from wherever the shared data is
    (``FIELDTRUTH_SHARED_DATA``, or beside the repository: see :mod:`fieldtruth.tests.data.shared`)."""
    folder = shared_data_root() / "kilneye"
    declaration = load_declaration(KILNEYE_EXAMPLE, allow_dirs=[folder])  # the data lie outside its folder
    files = [str(folder / Path(entry).name) for entry in declaration.files]
    return declaration.model_copy(update={"files": files})


def write_kiln_run(out: Path, n_detections: int = 500, seed: int = 0) -> Path:
    """A run folder over the KilnEye states: coverage tiles and ``n_detections`` seeded detections."""
    out.mkdir(parents=True, exist_ok=True)
    coverage = kiln_coverage()
    coverage.to_parquet(RunFiles(out).coverage)
    detections_frame(n_detections, seed, coverage.total_bounds).to_parquet(RunFiles(out).detections)
    return out


def detections_frame(n: int, seed: int, bounds: np.ndarray) -> gpd.GeoDataFrame:
    """``n`` seeded detections (the run-folder contract's columns) uniformly inside ``bounds``."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = bounds
    return gpd.GeoDataFrame(
        {
            "site_id": [f"site-{i:06d}" for i in range(n)], "label": "brick_kiln",
            "score": np.round(rng.uniform(0.5, 0.99, n), 4), "scene_id": "S2_SYNTH", "acquired": "2026-01-15",
            "detector": "kilnnet-v1", "bundle_sha256": "0" * 64, "tile_id": "k0000",
        },
        geometry=gpd.points_from_xy(rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)),
        crs="EPSG:4326",
    )


def csv_text(frame: pd.DataFrame) -> str:
    """The CSV text of a frame (no index)."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()
