"""Risk cells of a run: detections, review status, sector sites, area statistics and coverage per cell.

The grid (:mod:`fieldtruth.maps.risk_grid`) covers the run's AOI, the union of its coverage tiles. Each
cell holds its detections (count, max/mean score, count by review status from ``review.sqlite``), the
sector sites inside it (count per sector), optional area statistics joined by admin code, and the fraction
of its area under tiles whose status is ``covered`` or ``partial``; then a score, a band and an
explanation (:mod:`fieldtruth.maps.risk_score`). Sector datasets are streamed chunk by chunk, so memory
depends on the grid and the partition size, not on the number of sites.

Outputs (all inside the run folder): ``risk.parquet`` (every cell, GeoParquet, EPSG:4326), the shared
view ``risk_shared.geojson`` (:mod:`fieldtruth.maps.risk_shared`), and ``risk.json`` (provenance of the
sector datasets, what was dropped, the config). No output holds a site's position or attribute.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from fieldtruth.atomicfile import atomic_path, write_text
from fieldtruth.ingest.sectors import SectorDeclaration, SectorReport, iter_sector_chunks
from fieldtruth.maps.errors import RiskInputError, RunFolderError
from fieldtruth.maps.risk_grid import (
    DEFAULT_CELL_M,
    EQUAL_AREA_CRS,
    CellGrid,
    build_grid,
    coverage_fraction,
    points_to_cells,
)
from fieldtruth.maps.risk_score import RiskConfig, score_cells
from fieldtruth.maps.risk_shared import DEFAULT_K, shared_view
from fieldtruth.review.ledger import Ledger
from fieldtruth.runfiles import RISK, RISK_REPORT, RISK_SHARED, RunFiles

log = logging.getLogger(__name__)

STATUSES = ("unverified", "confirmed", "rejected", "uncertain", "field_visit")
COVERING = ("covered", "partial")


class RiskCells(NamedTuple):
    """Scored cells (EPSG:4326) and what went into them."""

    cells: gpd.GeoDataFrame
    sectors: list[SectorReport]
    sites_in_aoi: dict[str, int]
    detections_in_aoi: int


class RiskOutputs(NamedTuple):
    """Files written by :func:`write_risk`."""

    parquet: Path
    shared: Path
    report: Path


def read_run_aoi(run_dir: Path) -> tuple[gpd.GeoDataFrame, shapely.Geometry]:
    """Return the coverage tiles and their union (the AOI), both in EPSG:6933.

    Raises:
        RunFolderError: If ``coverage.parquet`` is missing.
        RiskInputError: If it lacks ``status`` or a CRS, or holds no tile.
    """
    path = RunFiles(Path(run_dir)).coverage
    if not path.is_file():
        raise RunFolderError(f"expected {str(path)!r}; it is missing. Point to a run folder made by `fieldtruth scan`.")
    tiles = gpd.read_parquet(path)
    if "status" not in tiles.columns or tiles.crs is None or tiles.empty:
        raise RiskInputError(
            f"expected tiles with a CRS and a `status` column in {str(path)!r}; got columns "
            f"{list(tiles.columns)!r}, crs {tiles.crs!r}, {len(tiles)} row(s)."
        )
    tiles = tiles.to_crs(EQUAL_AREA_CRS)
    return tiles, shapely.union_all(tiles.geometry.to_numpy())


def count_detections(run_dir: Path, grid: CellGrid) -> tuple[pd.DataFrame, int]:
    """Per-cell detection counts, scores and review statuses; and the number of detections in the AOI."""
    path = RunFiles(Path(run_dir)).detections
    if not path.is_file():
        raise RunFolderError(f"expected {str(path)!r}; it is missing. Point to a run folder made by `fieldtruth scan`.")
    det = gpd.read_parquet(path, columns=["site_id", "score", "geometry"])
    statuses: dict[str, str] = {}
    ledger_path = RunFiles(Path(run_dir)).ledger
    if ledger_path.is_file():
        ledger = Ledger.open(ledger_path)
        try:
            statuses = ledger.statuses()
        finally:
            ledger.close()
    n = len(grid.ix)
    pos = points_to_cells(grid, det.geometry) if len(det) else np.zeros(0, dtype=np.int64)
    inside = pos >= 0
    pos = pos[inside]
    status = np.array([statuses.get(s, "unverified") for s in det["site_id"].astype(str)], dtype=object)[inside]
    score = det["score"].to_numpy(dtype=float)[inside]
    out = {"det_count": np.bincount(pos, minlength=n)}
    for name in STATUSES:
        out[f"det_{name}"] = np.bincount(pos[status == name], minlength=n)
    open_ = status != "rejected"
    out["det_open"] = np.bincount(pos[open_], minlength=n)
    total = np.bincount(pos[open_], weights=score[open_], minlength=n)
    maximum = np.full(n, np.nan)
    np.fmax.at(maximum, pos[open_], score[open_])
    with np.errstate(invalid="ignore", divide="ignore"):
        out["det_mean_score"] = np.where(out["det_open"] > 0, total / np.maximum(out["det_open"], 1), np.nan)
    out["det_max_score"] = maximum
    return pd.DataFrame(out), int(inside.sum())


def count_sites(decls: list[SectorDeclaration], grid: CellGrid, partition_bytes: int | None = None,
                ) -> tuple[pd.DataFrame, list[SectorReport], dict[str, int]]:
    """Stream each declared dataset and count its sites per cell (``sites_<sector>`` columns)."""
    counts: dict[str, np.ndarray] = {}
    reports: list[SectorReport] = []
    inside: dict[str, int] = {}
    kwargs = {} if partition_bytes is None else {"partition_bytes": partition_bytes}
    for decl in decls:
        report = SectorReport.for_declaration(decl)
        reports.append(report)
        column = counts.setdefault(decl.sector, np.zeros(len(grid.ix), dtype=np.int64))
        inside[decl.name] = 0
        for chunk in iter_sector_chunks(decl, report=report, **kwargs):
            pos = points_to_cells(grid, chunk.geometry)
            pos = pos[pos >= 0]
            column += np.bincount(pos, minlength=len(grid.ix))
            inside[decl.name] += len(pos)
    frame = pd.DataFrame({f"sites_{s}": c for s, c in counts.items()}, index=range(len(grid.ix)))
    frame["sites_total"] = frame.sum(axis=1).astype(np.int64) if counts else 0
    return frame, reports, inside


def join_area_stats(config: RiskConfig, grid: CellGrid) -> pd.DataFrame:
    """Return ``admin_code`` and ``stat_<name>`` per cell (by the boundary holding the cell centre)."""
    stats = config.area_stats
    if stats is None:
        return pd.DataFrame(index=range(len(grid.ix)))
    try:
        bounds = pyogrio.read_dataframe(stats.boundaries, columns=[stats.boundary_code]).to_crs(EQUAL_AREA_CRS)
        table = pd.read_csv(stats.table, dtype={stats.table_code: str})
    except (OSError, ValueError, pyogrio.errors.DataSourceError) as exc:
        raise RiskInputError(f"expected readable area statistics ({stats.boundaries}, {stats.table}): {exc}") from exc
    wanted = [stats.table_code, *(t.column for t in stats.terms.values())]
    missing = [c for c in wanted if c not in table.columns] + (
        [stats.boundary_code] if stats.boundary_code not in bounds.columns else [])
    if missing:
        raise RiskInputError(f"expected column(s) {missing!r} in the area statistics; check `area_stats:` in the config.")
    centres = gpd.GeoDataFrame(geometry=shapely.centroid(grid.polygons()), crs=EQUAL_AREA_CRS)
    joined = gpd.sjoin(centres, bounds, how="left", predicate="within")
    codes = joined[~joined.index.duplicated()][stats.boundary_code].astype("string")
    table = table.drop_duplicates(stats.table_code).set_index(table[stats.table_code].astype(str).drop_duplicates())
    out = pd.DataFrame({"admin_code": codes.to_numpy()}, index=range(len(grid.ix)))
    for name, term in stats.terms.items():
        values = pd.to_numeric(table[term.column], errors="coerce")
        out[f"stat_{name}"] = codes.map(values).to_numpy(dtype=float)
    return out


def build_risk_cells(run_dir: Path, decls: list[SectorDeclaration], *, config: RiskConfig | None = None,
                     cell_m: float = DEFAULT_CELL_M, partition_bytes: int | None = None,
                     progress: Callable[[str], None] | None = None) -> RiskCells:
    """Score the risk cells of a run folder with the declared sector datasets.

    Args:
        run_dir: A run folder with ``coverage.parquet`` and ``detections.parquet`` (and ``review.sqlite``).
        decls: Sector dataset declarations.
        config: Scoring weights; the defaults of :class:`RiskConfig` when ``None``.
        cell_m: Cell side in metres (EPSG:6933).
        partition_bytes: Sector files larger than this are read in partitions (default 256 MiB).
        progress: Called with one-line progress messages.

    Returns:
        The cells (EPSG:4326) with counts, coverage, score, band and explanation.

    Raises:
        RunFolderError, RiskInputError, RiskConfigError: On a bad run folder, statistics or config.
        SectorError: From the ingest of a sector dataset.
    """
    config = config or RiskConfig()
    say = progress or (lambda message: None)
    tiles, aoi = read_run_aoi(run_dir)
    grid = build_grid(aoi, cell_m)
    say(f"grid: {len(grid.ix)} cells of {cell_m:g} m")
    coverage = coverage_fraction(grid, tiles[tiles["status"].isin(COVERING)])
    detections, n_det = count_detections(run_dir, grid)
    sites, reports, inside = count_sites(decls, grid, partition_bytes)
    say(f"{n_det} detection(s) and {sum(inside.values())} sector site(s) inside the AOI")
    table = pd.concat([detections, sites, join_area_stats(config, grid)], axis=1)
    table.insert(0, "coverage", coverage)
    table.insert(0, "cell_m", grid.cell_m)
    table.insert(0, "iy", grid.iy)
    table.insert(0, "ix", grid.ix)
    table.insert(0, "cell_id", grid.ids)
    scored = score_cells(table, config, sorted({d.sector for d in decls}))
    cells = gpd.GeoDataFrame(scored, geometry=grid.polygons(), crs=EQUAL_AREA_CRS).to_crs("EPSG:4326")
    return RiskCells(cells, reports, inside, n_det)


def write_risk(run_dir: Path, risk: RiskCells, *, config: RiskConfig | None = None, k: int = DEFAULT_K) -> RiskOutputs:
    """Write ``risk.parquet``, ``risk_shared.geojson`` and ``risk.json`` into the run folder (atomically)."""
    run_dir = Path(run_dir)
    config = config or RiskConfig()
    shared = shared_view(risk.cells, k=k)
    files = RunFiles(run_dir)
    out = RiskOutputs(files.risk, files.risk_shared, files.risk_report)
    with atomic_path(out.parquet) as tmp:
        risk.cells.to_parquet(tmp)
    write_text(out.shared, json.dumps(shared))
    report = {
        "cell_m": float(risk.cells["cell_m"].iloc[0]) if len(risk.cells) else None,
        "grid_crs": EQUAL_AREA_CRS, "k": k, "cells": len(risk.cells),
        "bands": risk.cells["band"].value_counts().to_dict(),
        "detections_in_aoi": risk.detections_in_aoi, "sites_in_aoi": risk.sites_in_aoi,
        "config": json.loads(config.model_dump_json()),
        "sectors": [r.summary() for r in risk.sectors],
    }
    write_text(out.report, json.dumps(report, indent=2, default=str))
    log.info("wrote %s, %s and %s", *out)
    return out


def prepare_recount(run_dir: Path) -> Callable[[], list[str]] | None:
    """Read what recounting the run's risk cells needs, before the detections change (an erased site).

    The returned function counts the detections per cell again, re-scores the cells with the config
    recorded in ``risk.json``, and rewrites ``risk.parquet``, ``risk_shared.geojson`` and ``risk.json``
    (sector counts and area statistics are kept as they are); it returns the files it rewrote.

    Returns:
        The recount, or None when the run has no risk cells.

    Raises:
        RiskInputError: If ``risk.parquet`` exists but it, ``risk.json`` or the coverage cannot be read.
    """
    run_dir = Path(run_dir)
    files = RunFiles(run_dir)
    if not files.risk.is_file():
        return None
    try:
        cells = gpd.read_parquet(files.risk)
        report = json.loads(files.risk_report.read_text(encoding="utf-8"))
        config, k = RiskConfig.model_validate(report["config"]), int(report.get("k", DEFAULT_K))
        cell_m = float(cells["cell_m"].iloc[0])
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise RiskInputError(
            f"expected readable {RISK} and {RISK_REPORT} in {str(run_dir)!r} to recount the risk cells; "
            f"got {type(exc).__name__}: {exc}. Restore them, or remove both and run `fieldtruth risk` "
            "again later."
        ) from exc
    _, aoi = read_run_aoi(run_dir)
    grid = CellGrid(cell_m, cells["ix"].to_numpy(np.int64), cells["iy"].to_numpy(np.int64), aoi)
    sectors = sorted(
        c.removeprefix("sites_") for c in cells.columns if c.startswith("sites_") and c != "sites_total"
    )

    def recount() -> list[str]:
        detections, n_det = count_detections(run_dir, grid)
        scores = ["geometry", "score", "band", "explanation"]
        table = pd.DataFrame(cells.drop(columns=scores, errors="ignore"))
        for column in detections.columns:
            table[column] = detections[column].to_numpy()
        scored = gpd.GeoDataFrame(score_cells(table, config, sectors), geometry=cells.geometry.to_numpy(),
                                  crs=cells.crs)
        with atomic_path(files.risk) as tmp:
            scored.to_parquet(tmp)
        write_text(files.risk_shared, json.dumps(shared_view(scored, k=k)))
        report.update(detections_in_aoi=n_det, bands=scored["band"].value_counts().to_dict())
        write_text(files.risk_report, json.dumps(report, indent=2, default=str))
        log.info("recounted the detections of %d risk cell(s) in %s", len(scored), run_dir)
        return [RISK, RISK_SHARED, RISK_REPORT]

    return recount
