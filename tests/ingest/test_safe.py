"""Sentinel-2 L2A products as downloaded (``.SAFE`` folder or ``.zip``): read in place, like their bands
as GeoTIFFs, with the product's metadata and BOA offset; hostile archives refused before any read."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from fieldtruth.imagery.read import read_chip
from fieldtruth.imagery.target import grid_for_scene
from fieldtruth.ingest import guard
from fieldtruth.ingest._sniff import Kind, sniff
from fieldtruth.ingest.errors import (
    InputNotFoundError,
    MissingDriverError,
    NotARasterError,
    ProductError,
    RasterRefusedError,
    UnsafeArchiveError,
)
from fieldtruth.ingest.rasters import open_raster
from fieldtruth.ingest.remote import check_href
from fieldtruth.ingest.scene import Scene, open_scene
from fieldtruth.ingest.sources import open_imagery
from fieldtruth.tests.data.rasters import scene_folder
from fieldtruth.tests.data.safe import (
    PRODUCT,
    safe_product,
    scl_layer,
    tree,
    write_scl,
    zip_product,
)

SIZE = 160
CLOUD = (0, 40, 0, 40)  # rows and columns of 10 m pixels under cloud (SCL class 9)
BANDS = ("blue", "green", "red", "nir")


@pytest.fixture(scope="module")
def products(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A GeoTIFF scene folder (with its SCL as a GeoTIFF), and the same bands as a SAFE folder and zip."""
    root = tmp_path_factory.mktemp("safe")
    tif = scene_folder(root / "tif", size=SIZE, seed=5)
    scl = scl_layer((SIZE, SIZE), CLOUD)
    write_scl(tif / "SCL.tif", scl, tif / "B02.tif")
    safe = safe_product(tif, root / "folder", scl=scl)
    return {"tif": tif, "safe": safe, "zip": zip_product(safe, root / "product.zip")}


def _chips(scene: Scene, reference: Scene) -> list:
    return [read_chip(scene, tile, BANDS) for tile in grid_for_scene(reference, tile_size=64, halo=8)]


@pytest.mark.parametrize("kind", ["safe", "zip"])
def test_a_product_reads_like_its_bands_as_geotiffs(products: dict[str, Path], kind: str) -> None:
    reference = open_scene(products["tif"])
    (scene,) = open_imagery(products[kind])
    assert scene.id == PRODUCT and scene.band_names == BANDS and "scl" in scene.bands
    assert (scene.crs, scene.bounds, scene.resolution) == (reference.crs, reference.bounds,
                                                           reference.resolution)
    for chip, expected in zip(_chips(scene, reference), _chips(reference, reference), strict=True):
        assert np.array_equal(chip.valid, expected.valid)
        assert np.array_equal(chip.data, expected.data)
    cloudy = read_chip(scene, next(iter(grid_for_scene(reference, tile_size=64, halo=0))), BANDS)
    assert not cloudy.valid[: CLOUD[1], : CLOUD[3]].any() and cloudy.valid[CLOUD[1]:, CLOUD[3]:].all()


@pytest.mark.parametrize("kind", ["safe", "zip"])
def test_the_products_metadata_goes_into_the_scene(products: dict[str, Path], kind: str) -> None:
    (scene,) = open_imagery(products[kind])
    assert scene.acquired == "2024-01-15T05:02:19.024Z" and scene.nodata == 0
    assert scene.metadata["platform"] == "sentinel-2b" and scene.metadata["processing_baseline"] == "05.10"
    assert scene.metadata["boa_add_offset"] == dict.fromkeys(BANDS, -1000.0)
    assert scene.metadata["boa_quantification_value"] == 10000 and scene.metadata["cloud_cover"] == 3.5
    assert scene.band_offsets == dict.fromkeys(BANDS, -1000.0)
    assert {p.item_id for p in scene.provenance} == {PRODUCT} and all(p.sha256 for p in scene.provenance)
    described = scene.describe()
    assert described["metadata"]["processing_baseline"] == "05.10"
    if kind == "zip":
        assert [p.href for p in scene.provenance] == [str(products["zip"].resolve())]
        assert all(b.href.startswith("/vsizip//") for b in scene.bands.values())


def test_a_product_with_the_boa_offset_gives_the_reflectance_of_one_without(tmp_path: Path) -> None:
    tif = scene_folder(tmp_path / "tif", size=96, seed=8)
    old = safe_product(tif, tmp_path / "old", offset=None, baseline="03.01")
    new = safe_product(tif, tmp_path / "new", offset=-1000, baseline="05.10")
    old_scene, new_scene = open_imagery(old)[0], open_imagery(new)[0]
    assert old_scene.band_offsets == {} and new_scene.band_offsets == dict.fromkeys(BANDS, -1000.0)
    assert np.array_equal(new_scene.read(BANDS), old_scene.read(BANDS) + 1000)  # as stored: 1000 apart
    for tile in grid_for_scene(old_scene, tile_size=48, halo=8):
        a, b = read_chip(old_scene, tile, BANDS), read_chip(new_scene, tile, BANDS)
        assert np.array_equal(a.valid, b.valid) and np.array_equal(a.data, b.data)


def test_a_baseline_04_product_without_offsets_is_refused(tmp_path: Path) -> None:
    tif = scene_folder(tmp_path / "tif", size=32)
    safe = safe_product(tif, tmp_path / "p", offset=None, baseline="04.00")
    with pytest.raises(ProductError, match="baseline 04.00 but no BOA_ADD_OFFSET for B02"):
        open_imagery(safe)


@pytest.mark.parametrize(("options", "message"), [
    ({"level": "Level-1C"}, "not a Level-2A product"),
    ({"quantification": 1000}, "BOA_QUANTIFICATION_VALUE is 1000"),
])
def test_products_fieldtruth_cannot_read_are_one_clear_line(tmp_path: Path, options: dict,
                                                            message: str) -> None:
    safe = safe_product(scene_folder(tmp_path / "tif", size=32), tmp_path / "p", **options)
    with pytest.raises(ProductError, match=message) as caught:
        open_imagery(safe)
    assert "\n" not in str(caught.value)


def test_metadata_with_entities_and_products_without_bands_are_refused(tmp_path: Path) -> None:
    safe = safe_product(scene_folder(tmp_path / "tif", size=32), tmp_path / "p")
    text = (safe / "MTD_MSIL2A.xml").read_text()
    (safe / "MTD_MSIL2A.xml").write_text(text.replace(
        "<n1:", '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/hostname">]><n1:', 1))
    with pytest.raises(ProductError, match="document type declaration"):
        open_imagery(safe)
    (safe / "MTD_MSIL2A.xml").write_text(text)
    shutil.rmtree(safe / "GRANULE")
    with pytest.raises(ProductError, match="no 10 m band"):
        open_imagery(safe)


@pytest.mark.parametrize("hostile", [{"extra": {"../../evil.txt": b"escaped"}},
                                     {"extra": {"/etc/cron.d/evil": b"x"}},
                                     {"link": ("S2.SAFE/GRANULE/x/IMG_DATA/R10m/T_B08_10m.jp2",
                                               "/etc/passwd")}])
def test_a_zip_with_a_parent_absolute_or_link_member_is_refused_before_any_read(
        products: dict[str, Path], tmp_path: Path, hostile: dict) -> None:
    archive = zip_product(products["safe"], tmp_path / "hostile.zip", **hostile)
    before = tree(tmp_path.parent)
    with pytest.raises(UnsafeArchiveError, match=r"hostile\.zip.*(traversal|link)"):
        open_imagery(archive)
    assert tree(tmp_path.parent) == before  # nothing extracted anywhere


def test_the_guard_reads_only_jpeg2000_members_of_checked_zips(products: dict[str, Path],
                                                              tmp_path: Path) -> None:
    archive = products["zip"].resolve()
    (scene,) = open_imagery(archive)
    member = scene.bands["nir"].href.removeprefix(f"/vsizip/{archive}/")
    with open_raster(scene.bands["nir"].href) as dataset:
        assert dataset.driver == "JP2OpenJPEG"
    with pytest.raises(RasterRefusedError, match="not a .jp2"):
        open_raster(f"/vsizip/{archive}/{PRODUCT}.SAFE/MTD_MSIL2A.xml")
    with pytest.raises(InputNotFoundError, match="no member"):
        open_raster(f"/vsizip/{archive}/{member.replace('B08', 'B8A')}")
    with pytest.raises(RasterRefusedError, match="names no member"):
        open_raster(f"/vsizip/{tmp_path}/nowhere.zip/{member}")
    hostile = zip_product(products["safe"], tmp_path / "h.zip", extra={"../x.jp2": b"x"})
    with pytest.raises(UnsafeArchiveError, match="traversal"):
        open_raster(f"/vsizip/{hostile}/{member}")
    with pytest.raises(RasterRefusedError, match="not a plain local path"):
        check_href(scene.bands["nir"].href)  # a document may still never name a /vsi path


def test_a_jp2_is_judged_by_content(products: dict[str, Path], tmp_path: Path) -> None:
    (scene,) = open_imagery(products["safe"])
    assert sniff(Path(scene.bands["nir"].href)) is Kind.JP2
    fake = tmp_path / "fake.jp2"
    fake.write_bytes((products["tif"] / "B08.tif").read_bytes())
    with pytest.raises(NotARasterError, match="a GeoTIFF"):
        open_raster(fake)


def test_a_missing_jpeg2000_driver_is_named(products: dict[str, Path],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard, "_gdal_drivers", lambda: frozenset({"GTiff", "VRT"}))
    for kind in ("safe", "zip"):
        with pytest.raises(MissingDriverError, match="JP2OpenJPEG driver") as caught:
            open_imagery(products[kind])
        assert "gdal_translate" in str(caught.value)


def test_a_rewritten_zip_is_opened_again(products: dict[str, Path], tmp_path: Path) -> None:
    from fieldtruth.imagery.handles import close_all, shared_raster

    archive = shutil.copy(products["zip"], tmp_path / "p.zip")
    (scene,) = open_imagery(archive)
    with shared_raster(scene.bands["nir"].href) as first:
        pass
    zip_product(products["safe"], tmp_path / "p.zip", extra={"readme.txt": b"a new version"})
    with shared_raster(scene.bands["nir"].href) as second:
        assert second is not first and not second.closed
    close_all()
