"""Sector dataset ingest: declarations, minimal columns, personal data, bad rows, CRS, formats, partitions."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Polygon

from fieldtruth.ingest.errors import (
    EmptySectorDataError,
    InputNotFoundError,
    PersonalDataError,
    SectorCrsError,
    SectorDataError,
    SectorDeclarationError,
)
from fieldtruth.ingest.sectors import load_declaration, read_sectors
from fieldtruth.tests.data.sectors import (
    KILNEYE_EXAMPLE,
    kilneye_declaration,
    sites_frame,
    sites_gdf,
    write_declaration,
    zipped_shapefile,
)
from fieldtruth.tests.data.shared import DEFAULT_SHARED_DATA, needs_shared_data


def _csv(tmp_path: Path, frame: pd.DataFrame, name: str = "sites.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


@needs_shared_data("kilneye")
def test_real_kiln_inventory_ingests_with_its_declaration() -> None:
    dataset = read_sectors(kilneye_declaration())
    report = dataset.report
    assert sum(f.rows_read for f in report.files) == 21_941
    assert len(report.files) == 5
    duplicates = [row for f in report.files for row in f.duplicate_rows]
    assert len(dataset.frame) == 21_941 - len(duplicates) and len(duplicates) == 1  # reported, not silent
    assert list(dataset.frame.columns) == ["kiln_type", "geometry", "sector"]
    assert all(f.dropped_columns == ["state"] for f in report.files)
    assert dataset.frame.crs == "EPSG:4326" and set(dataset.frame["sector"]) == {"brick_kilns"}
    x0, y0, x1, y1 = dataset.frame.total_bounds
    assert 73 < x0 < x1 < 90 and 21 < y0 < y1 < 33


def test_the_kilneye_example_reads_the_shared_data_beside_the_repository() -> None:
    # The tests read the inventory through kilneye_declaration() (FIELDTRUTH_SHARED_DATA may move it);
    # the example the docs show must name the folder where the data sits beside the repository.
    declaration = load_declaration(KILNEYE_EXAMPLE)
    folders = {(declaration.base_dir / entry).resolve().parent for entry in declaration.files}
    assert folders == {(DEFAULT_SHARED_DATA / "kilneye").resolve()}


def test_undeclared_columns_are_dropped_and_reported(tmp_path: Path) -> None:
    frame = sites_frame(40, personal=True)
    decl = write_declaration(tmp_path / "d.yaml", [_csv(tmp_path, frame).name])
    dataset = read_sectors(decl)
    assert list(dataset.frame.columns) == ["kiln_type", "geometry", "sector"]
    report = dataset.report.files[0]
    assert report.dropped_columns == ["capacity", "owner_name", "phone", "email"]
    assert report.personal_dropped == ["owner_name", "phone", "email"]


@pytest.mark.parametrize("column", ["owner_name", "phone", "email"])
def test_kept_personal_column_without_reason_is_refused(tmp_path: Path, column: str) -> None:
    frame = sites_frame(10, personal=True)
    decl = write_declaration(tmp_path / "d.yaml", [_csv(tmp_path, frame).name], keep=["kiln_type", column])
    with pytest.raises(PersonalDataError, match=column):
        read_sectors(decl)


def test_personal_content_under_an_innocent_name_is_refused_without_echoing_it(tmp_path: Path) -> None:
    frame = sites_frame(10, personal=True).rename(columns={"email": "notes", "phone": "remarks"})
    decl = write_declaration(tmp_path / "d.yaml", [_csv(tmp_path, frame).name], keep=["kiln_type", "notes"])
    with pytest.raises(PersonalDataError, match=r"'notes'.*line 2") as info:
        read_sectors(decl)
    assert "@example.org" not in str(info.value)
    decl = write_declaration(tmp_path / "d.yaml", [_csv(tmp_path, frame).name], keep=["remarks"])
    with pytest.raises(PersonalDataError, match="remarks"):
        read_sectors(decl)


def test_personal_column_declared_with_a_reason_is_kept(tmp_path: Path) -> None:
    frame = sites_frame(10, personal=True)
    personal = [{"column": "phone", "reason": "field team calls the kiln office before a visit"}]
    decl = write_declaration(tmp_path / "d.yaml", [_csv(tmp_path, frame).name], personal=personal)
    assert list(read_sectors(decl).frame["phone"]) == list(frame["phone"])
    short = [{"column": "phone", "reason": "ok"}]
    with pytest.raises(SectorDeclarationError, match="reason"):
        load_declaration(write_declaration(tmp_path / "d.yaml", ["sites.csv"], personal=short))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.assign(lat=f["lat"].astype(object).where(f.index != 3, "25.4x")),
         r"line 5: 'lat' is not a number"),
        (lambda f: f.assign(lon=f["lon"].where(f.index != 6)), r"line 8: missing coordinate 'lon'"),
        (lambda f: f.assign(lat=f["lat"].where(f.index != 0, 95.0)),
         r"line 2: coordinates outside the area of use"),
    ],
    ids=["bad-number", "missing-coordinate", "latitude-95"],
)
def test_malformed_rows_name_file_and_line(tmp_path: Path, edit, message: str) -> None:
    path = _csv(tmp_path, edit(sites_frame(20)), "bad.csv")
    decl = write_declaration(tmp_path / "d.yaml", [path.name])
    with pytest.raises(SectorDataError, match=r"bad\.csv' " + message):
        read_sectors(decl)
    reported = read_sectors(write_declaration(tmp_path / "r.yaml", [path.name], on_bad_rows="report"))
    assert len(reported.frame) == 19 and len(reported.report.files[0].bad_rows) == 1


def test_wrong_declared_crs_is_an_error(tmp_path: Path) -> None:
    path = _csv(tmp_path, sites_frame(20))
    with pytest.raises(SectorCrsError, match=r"EPSG:32644.*20 of 20 rows"):
        read_sectors(write_declaration(tmp_path / "d.yaml", [path.name],
                                       geometry={"x": "lon", "y": "lat", "crs": "EPSG:32644"}))
    utm = gpd.GeoSeries(gpd.points_from_xy(sites_frame(20).lon, sites_frame(20).lat), crs=4326).to_crs(32645)
    metres = pd.DataFrame({"kiln_type": "FCBK", "x": utm.x, "y": utm.y})
    path = _csv(tmp_path, metres, "metres.csv")
    with pytest.raises(SectorCrsError, match="area of use"):
        read_sectors(write_declaration(tmp_path / "d.yaml", [path.name],
                                       geometry={"x": "x", "y": "y", "crs": "EPSG:4326"}))
    ok = read_sectors(write_declaration(tmp_path / "d.yaml", [path.name],
                                        geometry={"x": "x", "y": "y", "crs": "EPSG:32645"}))
    assert len(ok.frame) == 20 and 86.9 < ok.frame.geometry.x.min()


@pytest.mark.parametrize("text", ["", "kiln_type,lon,lat\n"], ids=["zero-bytes", "header-only"])
def test_empty_file_is_an_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "empty.csv").write_text(text)
    with pytest.raises(EmptySectorDataError, match="empty.csv"):
        read_sectors(write_declaration(tmp_path / "d.yaml", ["empty.csv"]))


def test_missing_file_and_column_are_clear(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="nothing matches"):
        read_sectors(write_declaration(tmp_path / "d.yaml", ["absent_*.csv"]))
    _csv(tmp_path, sites_frame(5))
    with pytest.raises(SectorDeclarationError, match="'district'"):
        read_sectors(write_declaration(tmp_path / "d.yaml", ["sites.csv"], keep=["district"]))
    with pytest.raises(SectorDeclarationError, match="unknown key 'colour'"):
        load_declaration(write_declaration(tmp_path / "d.yaml", ["sites.csv"], colour="red"))


def test_duplicates_are_reported_and_dropped(tmp_path: Path) -> None:
    frame = sites_frame(10)
    path = _csv(tmp_path, pd.concat([frame, frame.iloc[[2, 5]]]))
    dataset = read_sectors(write_declaration(tmp_path / "d.yaml", [path.name]))
    assert len(dataset.frame) == 10
    assert [r.split()[-1] for r in dataset.report.files[0].duplicate_rows] == ["12", "13"]
    kept = read_sectors(write_declaration(tmp_path / "d.yaml", [path.name], on_duplicates="keep"))
    assert len(kept.frame) == 12 and len(kept.report.files[0].duplicate_rows) == 2


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shapefile-zip", "geoparquet"])
def test_vector_formats_read_the_same_sites(tmp_path: Path, fmt: str) -> None:
    gdf = sites_gdf(30, crs="EPSG:32645")
    names = {"geojson": "s.geojson", "gpkg": "s.gpkg", "shapefile-zip": "s.zip", "geoparquet": "s.parquet"}
    path = tmp_path / names[fmt]
    crs = "EPSG:32645"
    if fmt == "geojson":
        gdf, crs = gdf.to_crs(4326), "EPSG:4326"
        gdf.to_file(path)
    elif fmt == "gpkg":
        gdf.to_file(path, layer="kilns")
    elif fmt == "shapefile-zip":
        zipped_shapefile(path, gdf, tmp_path / "shp")
    else:
        gdf.to_parquet(path)
    decl = write_declaration(tmp_path / "d.yaml", [path.name], geometry={"crs": crs})
    dataset = read_sectors(decl)
    assert len(dataset.frame) == 30 and list(dataset.frame.columns) == ["kiln_type", "geometry", "sector"]
    assert dataset.report.files[0].dropped_columns == ["capacity"]
    assert dataset.frame.crs == "EPSG:4326"
    if fmt != "shapefile-zip":
        with pytest.raises(SectorCrsError, match="file says"):
            read_sectors(write_declaration(tmp_path / "d.yaml", [path.name], geometry={"crs": "EPSG:3857"}))


def test_invalid_geometry_is_repaired_and_reported(tmp_path: Path) -> None:
    gdf = sites_gdf(5)
    bowtie = Polygon([(87.0, 25.5), (87.01, 25.51), (87.01, 25.5), (87.0, 25.51)])
    gdf.loc[2, "geometry"] = bowtie
    gdf.loc[4, "geometry"] = None
    gdf.to_file(tmp_path / "s.gpkg")
    decl = write_declaration(tmp_path / "d.yaml", ["s.gpkg"], geometry={"crs": "EPSG:4326"})
    with pytest.raises(SectorDataError, match=r"feature 5: missing or empty geometry"):
        read_sectors(decl)
    dataset = read_sectors(write_declaration(tmp_path / "d.yaml", ["s.gpkg"], geometry={"crs": "EPSG:4326"},
                                             on_bad_rows="report"))
    assert dataset.report.files[0].repaired_rows == [f"{str(tmp_path / 's.gpkg')!r} feature 3"]
    assert len(dataset.frame) == 4 and dataset.frame.geometry.is_valid.all()


@pytest.mark.parametrize("name", ["sites.csv", "sites.parquet"])
def test_partitioned_read_gives_the_same_rows_and_row_numbers(tmp_path: Path, name: str) -> None:
    frame = sites_frame(3000, seed=4)
    frame.loc[2500, "lat"] = 95.0
    if name.endswith(".csv"):
        _csv(tmp_path, frame, name)
    else:
        gdf = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame.lon, frame.lat), crs=4326)
        gdf.drop(columns=["lon", "lat"]).to_parquet(tmp_path / name, row_group_size=500)
    geometry = {"x": "lon", "y": "lat", "crs": "EPSG:4326"} if name.endswith(".csv") else {"crs": "EPSG:4326"}
    decl = load_declaration(write_declaration(tmp_path / "d.yaml", [name], geometry=geometry,
                                              on_bad_rows="report"))
    whole = read_sectors(decl)
    parts = read_sectors(decl, partition_bytes=1)
    assert len(parts.frame) == len(whole.frame) == 2999
    assert parts.report.files[0].bad_rows == whole.report.files[0].bad_rows
    assert ("line 2502" if name.endswith(".csv") else "feature 2501") in parts.report.files[0].bad_rows[0]
    assert parts.frame.geometry.equals(whole.frame.geometry)
