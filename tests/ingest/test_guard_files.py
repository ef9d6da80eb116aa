"""Attacks on the file side of the input guard: nothing GDAL or OGR opens escapes what the guard saw.

VRTs are walked at every depth, formats are judged by content, documents may name files only inside
their own folder (unless a folder is allowed explicitly), and no error message quotes a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fieldtruth.ingest.errors import (
    IngestError,
    NotARasterError,
    RasterRefusedError,
    RefusedInputError,
    SectorDeclarationError,
)
from fieldtruth.ingest.guard import ALLOW_DIRS_ENV, allowed_dirs, allowing_dirs
from fieldtruth.ingest.rasters import open_raster
from fieldtruth.ingest.scene import open_scene
from fieldtruth.ingest.sectors import load_declaration, read_sectors
from fieldtruth.ingest.sources import open_imagery
from fieldtruth.tests.data.hostile import raw_band_vrt, stac_catalog, vrt, warped_vrt
from fieldtruth.tests.data.rangeserver import serve
from fieldtruth.tests.data.rasters import scene_folder
from fieldtruth.tests.data.sectors import sites_frame, write_declaration
from fieldtruth.tests.data.stac import item_for_folder

SECRET = "zq-secret-first-line-7f3a"  # what must never appear in a message


@pytest.fixture()
def band(tmp_path: Path) -> Path:
    return scene_folder(tmp_path / "s", size=64) / "B02.tif"


@pytest.fixture()
def secret(tmp_path: Path) -> Path:
    """A private file outside every folder a document names."""
    path = tmp_path / "private" / "notes.csv"
    path.parent.mkdir()
    path.write_text(f"{SECRET}\n1,2\n")
    return path


def test_a_vrt_of_local_geotiffs_still_opens(tmp_path: Path, band: Path) -> None:
    with open_raster(vrt(tmp_path / "ok.vrt", "s/B02.tif", relative=True)) as dataset:
        assert dataset.read(1).shape == (64, 64)


def test_a_vrt_whose_source_is_a_vrt_disguised_as_tif_is_refused(tmp_path: Path, band: Path) -> None:
    with serve(tmp_path) as (base, log):
        vrt(tmp_path / "inner.tif", f"/vsicurl/{base}/s/B02.tif")  # VRT XML named .tif
        outer = vrt(tmp_path / "outer.vrt", "inner.tif", relative=True)
        with pytest.raises(RasterRefusedError, match="inner.tif"):
            open_raster(outer)
        with pytest.raises(RasterRefusedError):
            open_scene(outer)
    assert log.requests == []


def test_a_vrt_chain_is_checked_at_every_depth(tmp_path: Path, band: Path) -> None:
    with serve(tmp_path) as (base, log):
        vrt(tmp_path / "c.vrt", f"/vsicurl/{base}/s/B02.tif")
        vrt(tmp_path / "b.vrt", "c.vrt", relative=True)
        with pytest.raises(RasterRefusedError, match="c.vrt"):
            open_raster(vrt(tmp_path / "a.vrt", "b.vrt", relative=True))
    assert log.requests == []
    vrt(tmp_path / "c.vrt", "s/B02.tif", relative=True)  # the same chain, harmless, opens
    with open_raster(tmp_path / "a.vrt") as dataset:
        assert dataset.width == 64


def test_a_vrt_that_names_itself_or_nests_too_deep_is_refused(tmp_path: Path, band: Path) -> None:
    with pytest.raises(RasterRefusedError, match="refers back"):
        open_raster(vrt(tmp_path / "loop.vrt", "loop.vrt", relative=True))
    vrt(tmp_path / "d0.vrt", "s/B02.tif", relative=True)
    for i in range(1, 8):
        vrt(tmp_path / f"d{i}.vrt", f"d{i - 1}.vrt", relative=True)
    with pytest.raises(RasterRefusedError, match="deep"):
        open_raster(tmp_path / "d7.vrt")


def test_a_warped_vrt_whose_source_dataset_is_a_url_is_refused(tmp_path: Path, band: Path) -> None:
    with serve(tmp_path) as (base, log):
        for source in (f"{base}/s/B02.tif", f"/vsicurl/{base}/s/B02.tif"):
            with pytest.raises(RasterRefusedError, match="may only read local GeoTIFFs"):
                open_raster(warped_vrt(tmp_path / "warped.vrt", source))
    assert log.requests == []
    with open_raster(warped_vrt(tmp_path / "warped.vrt", str(band))) as dataset:  # local: allowed
        assert dataset.read(1).shape == (64, 64)


def test_vrt_bands_that_read_raw_files_or_run_code_are_refused(tmp_path: Path, band: Path) -> None:
    local = tmp_path / "raw.bin"
    local.write_bytes(b"\x01" * 8)
    with pytest.raises(RasterRefusedError, match="VRTRawRasterBand"):
        open_raster(raw_band_vrt(tmp_path / "raw.vrt", local))
    code = ("<PixelFunctionType>f</PixelFunctionType><PixelFunctionLanguage>Python</PixelFunctionLanguage>"
            "<PixelFunctionCode><![CDATA[\ndef f(*a, **k):\n    open('/tmp/pwned', 'w')\n]]>"
            "</PixelFunctionCode>")
    with pytest.raises(RasterRefusedError, match="VRTDerivedRasterBand"):
        open_raster(vrt(tmp_path / "derived.vrt", "s/B02.tif", relative=True,
                        band_kind="VRTDerivedRasterBand", inner=code))
    with pytest.raises(RasterRefusedError, match="VRTPansharpenedDataset"):
        open_raster(vrt(tmp_path / "pan.vrt", "s/B02.tif", relative=True,
                        dataset_kind="VRTPansharpenedDataset"))


def test_a_vrt_reading_a_file_outside_its_folder_is_refused_without_quoting_it(tmp_path: Path,
                                                                               secret: Path) -> None:
    folder = tmp_path / "vrts"
    folder.mkdir()
    for source in (str(secret), "../private/notes.csv"):
        with pytest.raises(RasterRefusedError) as caught:
            open_raster(vrt(folder / "evil.vrt", source, relative=not source.startswith("/")))
        assert SECRET not in str(caught.value)


def test_a_vrt_claiming_absurd_dimensions_is_refused_like_a_geotiff(tmp_path: Path, band: Path) -> None:
    with pytest.raises(RasterRefusedError, match="200000 x 200000"):
        open_raster(vrt(tmp_path / "huge.vrt", "s/B02.tif", relative=True, size=200_000))
    with pytest.raises(RasterRefusedError, match="implausible"):
        open_raster(vrt(tmp_path / "big.vrt", "s/B02.tif", relative=True, size=100_000))


def test_a_vrt_with_a_document_type_declaration_is_refused(tmp_path: Path, band: Path) -> None:
    path = tmp_path / "dtd.vrt"
    path.write_text('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/hostname">]>'
                    + vrt(tmp_path / "plain.vrt", "s/B02.tif", relative=True).read_text())
    with pytest.raises(NotARasterError, match="dtd.vrt"):
        open_raster(path)


def test_a_geotiff_that_also_carries_vrt_xml_is_refused(tmp_path: Path, band: Path) -> None:
    path = tmp_path / "hybrid.tif"
    data = band.read_bytes()
    path.write_bytes(data[:16] + b'<VRTDataset rasterXSize="1" rasterYSize="1"/>' + data[16:])
    with pytest.raises(NotARasterError, match="hybrid.tif"):
        open_raster(path)


def test_a_scene_folder_band_linked_to_a_file_that_is_no_geotiff_is_refused(tmp_path: Path,
                                                                            secret: Path) -> None:
    """A folder the user names may hold links (to band files kept elsewhere); what they reach must still
    be a GeoTIFF, and the message quotes none of it."""
    folder = scene_folder(tmp_path / "scene", size=64)
    disguised = secret.with_suffix(".tif")
    disguised.write_bytes(secret.read_bytes())
    for target, error in ((secret, RasterRefusedError), (disguised, NotARasterError)):
        (folder / "B08.tif").unlink()
        os.symlink(target, folder / "B08.tif")
        with pytest.raises(error, match=target.name) as caught:
            open_scene(folder)
        assert SECRET not in str(caught.value)
    (folder / "B08.tif").unlink()
    os.symlink(scene_folder(tmp_path / "elsewhere", size=64, seed=9) / "B08.tif", folder / "B08.tif")
    assert open_scene(folder).band_names == ("blue", "green", "red", "nir")


def test_a_declaration_naming_a_file_outside_its_folder_is_refused_without_quoting_it(
    tmp_path: Path, secret: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    for entry in (str(secret), "../private/notes.csv", "../private/*.csv", "/*/hostname", "/etc/host*"):
        decl = write_declaration(work / "d.yaml", [entry])
        with pytest.raises(RefusedInputError, match="outside") as caught:
            read_sectors(decl)
        assert SECRET not in str(caught.value)
    os.symlink(secret, work / "link.csv")
    with pytest.raises(RefusedInputError, match="outside"):
        read_sectors(write_declaration(work / "d.yaml", ["link.csv"]))


def test_an_allowed_folder_is_read_and_errors_still_quote_nothing(tmp_path: Path, secret: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    decl = write_declaration(work / "d.yaml", [str(secret)])
    with pytest.raises(SectorDeclarationError) as caught:  # allowed, but not a sector dataset
        read_sectors(load_declaration(decl, allow_dirs=[secret.parent]))
    assert SECRET not in str(caught.value)
    monkeypatch.setenv(ALLOW_DIRS_ENV, str(secret.parent))
    sites_frame(5).to_csv(secret.parent / "sites.csv", index=False)
    dataset = read_sectors(write_declaration(work / "d.yaml", [str(secret.parent / "sites.csv")]))
    assert len(dataset.frame) == 5


def test_no_message_quotes_a_value_or_the_header_of_a_sector_file(tmp_path: Path) -> None:
    frame = sites_frame(10)
    frame["lat"] = frame["lat"].astype(object)
    frame.loc[3, "lat"] = SECRET
    frame = frame.rename(columns={"kiln_type": f"{SECRET}-column"})
    frame.to_csv(tmp_path / "sites.csv", index=False)
    for declaration in (write_declaration(tmp_path / "d.yaml", ["sites.csv"], keep=[]),
                        write_declaration(tmp_path / "d.yaml", ["sites.csv"])):
        with pytest.raises(IngestError) as caught:
            read_sectors(declaration)
        assert SECRET not in str(caught.value)


def test_a_catalogue_linking_outside_its_folder_is_refused(tmp_path: Path, secret: Path) -> None:
    root = tmp_path / "stac"
    stac_catalog(root / "catalog.json", [("child", "../private/notes.csv")])
    with pytest.raises(RefusedInputError, match="outside") as caught:
        open_imagery(root / "catalog.json")
    assert SECRET not in str(caught.value)


def test_a_catalogue_item_whose_asset_lies_outside_the_catalogue_is_refused(tmp_path: Path) -> None:
    elsewhere = scene_folder(tmp_path / "elsewhere", size=64)
    root = tmp_path / "stac"
    root.mkdir()
    item = item_for_folder(elsewhere, "item")  # absolute paths outside the catalogue's folder
    item.set_self_href(str(root / "item" / "item.json"))
    item.save_object(include_self_link=False)
    stac_catalog(root / "catalog.json", [("item", "./item/item.json")])
    with pytest.raises(RasterRefusedError, match="outside"):
        open_imagery(root / "catalog.json")
    assert [s.id for s in open_imagery(root / "catalog.json", allow_dirs=[elsewhere])] == ["item"]


def test_allowing_dirs_adds_to_the_variable_for_the_block_only(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """What the command line's --allow-dir does: allow folders as FIELDTRUTH_ALLOW_DIRS does, then forget."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    monkeypatch.delenv(ALLOW_DIRS_ENV, raising=False)
    with allowing_dirs([second]) as allowed:
        assert allowed == (second.resolve(),) == allowed_dirs()
    assert ALLOW_DIRS_ENV not in os.environ
    monkeypatch.setenv(ALLOW_DIRS_ENV, str(first))
    with allowing_dirs([second]) as allowed:
        assert allowed == (first.resolve(), second.resolve())
    assert os.environ[ALLOW_DIRS_ENV] == str(first)
    with pytest.raises(RuntimeError), allowing_dirs([second]):
        raise RuntimeError("the block failed")
    assert os.environ[ALLOW_DIRS_ENV] == str(first)


def test_allowing_dirs_refuses_what_the_variable_cannot_hold(tmp_path: Path) -> None:
    odd = tmp_path / f"a{os.pathsep}b"
    odd.mkdir()
    (tmp_path / "file.txt").write_text("x")
    for folder, message in ((odd, "separates"), (tmp_path / "missing", "not an existing folder"),
                            (tmp_path / "file.txt", "not an existing folder")):
        with pytest.raises(RefusedInputError, match=message), allowing_dirs([folder]):
            pass
