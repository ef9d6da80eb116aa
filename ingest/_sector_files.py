"""Reading sector dataset files in chunks: CSV, GeoJSON, GeoPackage, Shapefile (also zipped), GeoParquet.

Files over ``partition_bytes`` are read in partitions with dask (``dask.dataframe.read_csv``) or
dask-geopandas (``read_file``/``read_parquet``), one partition in memory at a time. Zipped shapefiles are
never extracted: the member list is validated (no absolute or ``..`` paths, no links, bounded member count,
total size and compression ratio, measured by streaming decompression into nothing:
:mod:`fieldtruth.ingest._zip`) and the shapefile is then read in place through GDAL's ``/vsizip/``.
Every file (and the shapefile inside a zip) is handed to OGR only once the input guard has seen that its
content is the declared format (:func:`fieldtruth.ingest.guard.vector_source`); OGR itself may not reach
the network. Error messages
never quote a file's content.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import geopandas as gpd
import pandas as pd
import pyogrio

from fieldtruth.ingest._sector_decl import Format, SectorDeclaration
from fieldtruth.ingest._sniff import HEAD_BYTES, Kind, sniff_bytes
from fieldtruth.ingest._zip import check_zip, member_head
from fieldtruth.ingest.errors import (
    EmptySectorDataError,
    RefusedInputError,
    SectorDataError,
    SectorError,
    UnsafeArchiveError,
)
from fieldtruth.ingest.guard import vector_source

log = logging.getLogger(__name__)

#: Files larger than this are read in partitions.
PARTITION_BYTES = 256 * 1024**2


class RawChunk(NamedTuple):
    """Rows of one file as read, before any check; ``first_row`` is the 0-based index of the first row."""

    frame: pd.DataFrame
    first_row: int


def zipped_shapefile(path: Path, layer: str | None) -> str:
    """Validate a zip and return the GDAL ``/vsizip/`` path of its one shapefile (or of ``layer``)."""
    shapefiles = [m for m in check_zip(path) if m.lower().endswith(".shp")]
    if layer is not None:
        shapefiles = [m for m in shapefiles if PurePosixPath(m).stem == layer]
    if len(shapefiles) != 1:
        raise SectorDataError(
            f"expected exactly one shapefile{' named ' + repr(layer) if layer else ''} in {str(path)!r}; "
            f"found {shapefiles!r}. Declare `layer:` with the shapefile's name."
        )
    found = sniff_bytes(member_head(path, shapefiles[0], HEAD_BYTES))
    if found is not Kind.SHAPEFILE:
        raise UnsafeArchiveError(
            f"expected a shapefile as member {shapefiles[0]!r} of {str(path)!r}; it is {found.value}. "
            "Refused."
        )
    return f"/vsizip/{path.resolve()}/{shapefiles[0]}"


def iter_raw_chunks(decl: SectorDeclaration, path: Path, fmt: Format,
                    partition_bytes: int = PARTITION_BYTES) -> Iterator[RawChunk]:
    """Yield the rows of one file in chunks (one chunk when the file is small).

    Raises:
        EmptySectorDataError: If the file is empty.
        SectorDataError: If the file cannot be parsed.
    """
    if path.stat().st_size == 0:
        raise EmptySectorDataError(f"expected rows in {str(path)!r}; the file is empty (0 bytes).")
    large = path.stat().st_size > partition_bytes
    try:
        if fmt == "csv":
            yield from _csv_chunks(path, large, partition_bytes)
        elif fmt == "geoparquet":
            yield from _parquet_chunks(path, large)
        else:
            source = vector_source(path, fmt, what=f"sector file ({decl.name!r})")
            if path.suffix.lower() == ".zip":
                source = zipped_shapefile(path, decl.layer)
            yield from _vector_chunks(source, decl.layer if fmt != "shapefile" else None, large)
    except (pd.errors.ParserError, pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError,
            ValueError, OSError) as exc:
        if isinstance(exc, SectorError | RefusedInputError):
            raise
        # Parser and OGR messages say where reading failed; other errors may quote a value: only their kind.
        where = str(exc) if isinstance(exc, pd.errors.ParserError | pyogrio.errors.DataSourceError) else ""
        raise SectorDataError(
            f"expected a readable {fmt} file; reading {str(path)!r} failed ({type(exc).__name__}"
            + (f": {where}" if where else "") + ")"
        ) from exc


def _csv_chunks(path: Path, large: bool, partition_bytes: int) -> Iterator[RawChunk]:
    if not large:
        try:
            yield RawChunk(pd.read_csv(path, dtype=str, skipinitialspace=True), 0)
        except pd.errors.EmptyDataError as exc:
            raise EmptySectorDataError(f"expected a header and rows in {str(path)!r}; it has none.") from exc
        return
    import dask.dataframe as dd

    frame = dd.read_csv(str(path), dtype=str, blocksize=max(partition_bytes // 4, 1 << 16),
                        skipinitialspace=True)
    yield from _partitions(frame)


def _parquet_chunks(path: Path, large: bool) -> Iterator[RawChunk]:
    if not large:
        yield RawChunk(gpd.read_parquet(path), 0)
        return
    import dask_geopandas

    yield from _partitions(dask_geopandas.read_parquet(str(path)))


def _vector_chunks(source: str, layer: str | None, large: bool) -> Iterator[RawChunk]:
    if not large:
        yield RawChunk(pyogrio.read_dataframe(source, layer=layer), 0)
        return
    import dask_geopandas

    n = max(1, pyogrio.read_info(source, layer=layer)["features"] // 500_000)
    yield from _partitions(dask_geopandas.read_file(source, layer=layer, npartitions=n))


def _partitions(frame: object) -> Iterator[RawChunk]:
    """Compute one partition at a time (bounded memory), numbering rows across partitions."""
    first = 0
    for i in range(frame.npartitions):  # type: ignore[attr-defined]
        part = frame.get_partition(i).compute()  # type: ignore[attr-defined]
        log.debug("partition %d: %d row(s)", i, len(part))
        yield RawChunk(part.reset_index(drop=True), first)
        first += len(part)
