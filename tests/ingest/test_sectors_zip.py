"""Zipped shapefiles are read in place, never extracted; hostile archives are refused first."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from fieldtruth.ingest.errors import UnsafeArchiveError
from fieldtruth.ingest.sectors import check_zip, read_sectors
from fieldtruth.tests.data.sectors import (
    bomb_zip,
    sites_gdf,
    traversal_zip,
    write_declaration,
    zipped_shapefile,
)


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_zip_with_parent_paths_is_refused_before_extraction(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    traversal_zip(work / "evil.zip")
    decl = write_declaration(work / "d.yaml", ["evil.zip"], geometry={"crs": "EPSG:4326"})
    before, cwd_before = _tree(tmp_path), set(os.listdir(Path.cwd()))
    with pytest.raises(UnsafeArchiveError, match=r"evil\.zip.*'\.\./\.\./evil\.txt'.*traversal"):
        read_sectors(decl)
    assert _tree(tmp_path) == before and set(os.listdir(Path.cwd())) == cwd_before
    assert not (tmp_path.parent / "evil.txt").exists()


def test_absolute_member_path_is_refused(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "abs.zip", "w") as archive:
        archive.writestr("/etc/sites.shp", b"x")
    with pytest.raises(UnsafeArchiveError, match="absolute"):
        check_zip(tmp_path / "abs.zip")


def test_zip_bomb_is_refused_by_ratio_and_by_size(tmp_path: Path) -> None:
    bomb_zip(tmp_path / "bomb.zip", megabytes=64)
    decl = write_declaration(tmp_path / "d.yaml", ["bomb.zip"], geometry={"crs": "EPSG:4326"})
    before = _tree(tmp_path)
    with pytest.raises(UnsafeArchiveError, match=r"bomb\.zip.*zip bomb"):
        read_sectors(decl)
    assert _tree(tmp_path) == before
    with pytest.raises(UnsafeArchiveError, match="uncompressed bytes"):
        check_zip(tmp_path / "bomb.zip", max_bytes=10 * 1024**2, max_ratio=1e9)


def test_a_clean_zipped_shapefile_is_read_without_extracting(tmp_path: Path) -> None:
    zipped_shapefile(tmp_path / "ok.zip", sites_gdf(12), tmp_path / "shp")
    for part in (tmp_path / "shp").iterdir():
        part.unlink()
    decl = write_declaration(tmp_path / "d.yaml", ["ok.zip"], geometry={"crs": "EPSG:4326"})
    before = _tree(tmp_path)
    dataset = read_sectors(decl)
    assert len(dataset.frame) == 12
    assert _tree(tmp_path) == before
