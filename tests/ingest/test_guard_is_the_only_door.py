"""The input guard stays the only door: every call that lets GDAL, OGR or Python open a path or URL is
listed here with the reason it is safe, so a new one fails this test until someone has looked at it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("ingest", "imagery", "detectors", "pipelines", "review", "maps")

#: Calls that open something by name: GDAL/OGR drivers, pystac's own readers, Python HTTP, and the
#: pandas/dask/pyarrow readers that take URLs too (through fsspec: ``http://``, ``s3://``, ...).
DOORS = {
    "rasterio.open", "gpd.read_file", "geopandas.read_file", "dask_geopandas.read_file", "fiona.open",
    "pyogrio.read_dataframe", "pyogrio.read_info", "pyogrio.read_arrow",
    "pystac.read_file", "pystac.Item.from_file", "pystac.Catalog.from_file", "pystac.Collection.from_file",
    "Client.open", "urlopen", "urllib.request.urlopen", "requests.get", "requests.post", "requests.request",
    "pd.read_csv", "pandas.read_csv", "dd.read_csv", "gpd.read_parquet", "geopandas.read_parquet",
    "dask_geopandas.read_parquet", "pq.read_table", "pq.ParquetFile",
}

#: (module, call) -> why it is safe.
KNOWN = {
    ("ingest/rasters.py", "rasterio.open"): "only what guard.raster_source returned, with its one driver",
    ("ingest/_sector_files.py", "pyogrio.read_dataframe"): "after guard.vector_source (or the checked zip)",
    ("ingest/_sector_files.py", "pyogrio.read_info"): "after guard.vector_source (or the checked zip)",
    ("ingest/_sector_files.py", "dask_geopandas.read_file"): "after guard.vector_source (or the checked zip)",
    ("ingest/aoi.py", "gpd.read_file"): "after guard.vector_file",
    ("maps/risk.py", "pyogrio.read_dataframe"): "after guard.vector_file",
    ("ingest/stac.py", "Client.open"): "with GuardedStacApiIO: every hop through the network guard",
    ("maps/leads.py", "gpd.read_file"): "the run folder's own files, written by the scan",
    ("pipelines/demo.py", "gpd.read_file"): "labels the demo generated itself",
    ("pipelines/demo_registry.py", "gpd.read_file"): "labels the demo generated itself",
    ("detectors/labels.py", "gpd.read_file"): "known gap (SECURITY.md): training labels, no format check yet",
    ("detectors/labels.py", "gpd.read_parquet"): "known gap (SECURITY.md): training labels the user named",
    ("ingest/_sector_files.py", "pd.read_csv"): "after guard.local_file (a declared file)",
    ("ingest/_sector_files.py", "dd.read_csv"): "after guard.local_file (a declared file)",
    ("ingest/_sector_files.py", "gpd.read_parquet"): "after guard.local_file (a declared file)",
    ("ingest/_sector_files.py", "dask_geopandas.read_parquet"): "after guard.local_file (a declared file)",
    ("maps/risk.py", "pd.read_csv"): "after guard.local_file, in the risk config's folder",
    ("maps/risk.py", "gpd.read_parquet"): "the run folder's own files (RunFiles), written by the scan",
    ("maps/leads.py", "gpd.read_parquet"): "the run folder's own files, written by the scan",
    ("pipelines/demo.py", "gpd.read_parquet"): "detections the demo's own scan wrote",
    ("review/erasure_files.py", "pq.read_table"): "files inside the run folder, as a local Path",
    ("review/schema.py", "pq.read_table"): "the run folder's detections (RunFiles), as a local Path",
    ("review/sitedata.py", "pq.read_table"): "the run folder's detections (RunFiles), as a local Path",
    (
        "maps/exports.py",
        "gpd.read_parquet",
    ): "the run folder's risk cells (RunFiles), written by fieldtruth risk",
    (
        "pipelines/stacitem.py",
        "gpd.read_parquet",
    ): "the run folder's coverage (RunFiles), written by the scan",
    ("pipelines/stacitem.py", "rasterio.open"): "the run folder's heatmap (RunFiles), written by the scan",
    ("pipelines/heatmap.py", "rasterio.open"): "the heatmap this module wrote (RunFiles), or its staged copy",
    ("imagery/synthetic_dates.py", "rasterio.open"): "the bands of a synthetic scene the generator wrote",
    ("imagery/warp.py", "rasterio.open"): "a VRT built in memory of band files open_raster already opened",
    ("pipelines/sitelinks.py", "gpd.read_parquet"): "run folders' detections and coverage (RunFiles, a Path)",
    ("pipelines/forget.py", "pq.read_table"): "linked run folders' detections (RunFiles), as a local Path",
    ("maps/sincedates.py", "pq.read_table"): "linked run folders' detections (RunFiles), as a local Path",
}


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return "?"


def _writes(call: ast.Call) -> bool:
    modes = [a.value for a in call.args[1:2] if isinstance(a, ast.Constant)]
    modes += [k.value.value for k in call.keywords if k.arg == "mode" and isinstance(k.value, ast.Constant)]
    return any(isinstance(m, str) and m != "r" for m in modes)


def _doors() -> set[tuple[str, str]]:
    found = set()
    for room in ROOMS:
        for path in sorted((ROOT / room).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and _name(node.func) in DOORS and not _writes(node):
                    found.add((str(path.relative_to(ROOT)), _name(node.func)))
    return found


def test_every_door_to_gdal_ogr_or_http_is_known() -> None:
    found = _doors()
    assert found - set(KNOWN) == set(), "a new way to open a path or URL: route it through ingest.guard"
    assert set(KNOWN) - found == set(), "a listed door is gone: remove it from KNOWN"
