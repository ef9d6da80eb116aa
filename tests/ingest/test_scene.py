"""Opening scenes: folders of bands, multi-band files, provenance, and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fieldtruth.ingest.errors import (
    BandMismatchError,
    InputNotFoundError,
    NotARasterError,
    RasterRefusedError,
)
from fieldtruth.ingest.provenance import file_sha256
from fieldtruth.ingest.scene import open_scene
from fieldtruth.tests.data.rasters import multiband_file, scene_folder, write_band
from fieldtruth.tests.data.shared import needs_shared_data, shared_data_root

SHIPS = shared_data_root() / "sen2ships"


def test_folder_of_bands_opens_with_names_grid_and_provenance(tmp_path: Path) -> None:
    folder = scene_folder(tmp_path / "scene", size=200)
    scene = open_scene(folder)
    assert scene.band_names == ("blue", "green", "red", "nir")
    assert (scene.width, scene.height) == (200, 200)
    assert scene.resolution == (10.0, 10.0)
    assert scene.crs.to_epsg() == 32645
    hashes = {p.href: p.sha256 for p in scene.provenance}
    assert hashes[str((folder / "B04.tif").resolve())] == file_sha256(folder / "B04.tif")
    assert all(p.size and p.size > 0 for p in scene.provenance)


def test_read_returns_the_band_pixels_in_order(tmp_path: Path) -> None:
    folder = scene_folder(tmp_path / "scene", size=64)
    pixels = open_scene(folder).read()
    import rasterio

    with rasterio.open(folder / "B08.tif") as nir:
        np.testing.assert_array_equal(pixels[3], nir.read(1).astype(np.float32))


def test_multiband_file_gets_default_band_names(tmp_path: Path) -> None:
    scene = open_scene(multiband_file(tmp_path / "stack.tif"))
    assert scene.band_names == ("blue", "green", "red", "nir")
    assert [b.index for b in scene.bands.values()] == [1, 2, 3, 4]


def test_missing_path_names_the_input(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="nowhere"):
        open_scene(tmp_path / "nowhere")


def test_folder_without_rasters_says_what_was_expected(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not imagery")
    with pytest.raises(NotARasterError, match=r"no band files.*B02\.tif"):
        open_scene(tmp_path)


def test_text_file_posing_as_geotiff_is_not_a_raster(tmp_path: Path) -> None:
    fake = tmp_path / "image.tif"
    fake.write_text("hello, I am not a TIFF")
    with pytest.raises(NotARasterError, match="image.tif"):
        open_scene(fake)


def test_bands_of_different_sizes_are_refused(tmp_path: Path) -> None:
    folder = scene_folder(tmp_path / "scene", size=128)
    write_band(folder / "B08.tif", np.ones((100, 100)))
    with pytest.raises(BandMismatchError, match="'nir'.*same size"):
        open_scene(folder)


def test_bands_at_coarser_resolution_over_the_same_footprint_are_accepted(tmp_path: Path) -> None:
    folder = scene_folder(tmp_path / "scene", size=128)
    write_band(folder / "B08.tif", np.full((64, 64), 1000), res=20.0)
    scene = open_scene(folder)
    assert scene.resolution == (10.0, 10.0)
    assert scene.read().shape == (4, 128, 128)


def test_vrt_disguised_as_tif_is_refused(tmp_path: Path) -> None:
    folder = scene_folder(tmp_path / "scene", size=64)
    disguised = tmp_path / "evil.tif"
    disguised.write_text(
        f'<VRTDataset rasterXSize="64" rasterYSize="64"><VRTRasterBand dataType="UInt16" band="1">'
        f'<SimpleSource><SourceFilename>{folder / "B02.tif"}</SourceFilename></SimpleSource>'
        f"</VRTRasterBand></VRTDataset>"
    )
    with pytest.raises(NotARasterError, match="evil.tif"):
        open_scene(disguised)


def test_unlisted_format_is_refused(tmp_path: Path) -> None:
    png = tmp_path / "picture.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(RasterRefusedError, match="picture.png"):
        open_scene(png)


def test_huge_claimed_dimensions_are_refused_before_reading(tmp_path: Path) -> None:
    import rasterio
    from rasterio.transform import from_origin

    huge = tmp_path / "huge.tif"
    profile = {"driver": "GTiff", "dtype": "uint8", "count": 1, "width": 200_000, "height": 200_000,
               "crs": "EPSG:32645", "transform": from_origin(0, 0, 10, 10), "tiled": True,
               "compress": "deflate", "sparse_ok": True}
    with rasterio.open(huge, "w", **profile):
        pass
    assert huge.stat().st_size < 5_000_000
    with pytest.raises(RasterRefusedError, match="200000 x 200000"):
        open_scene(huge)


@needs_shared_data("sen2ships")
def test_sen2ships_port_opens_with_its_date_and_bands() -> None:
    scene = open_scene(SHIPS / "busan")
    assert scene.id == "sen2ships-busan"
    assert scene.acquired.startswith("2022-05-14")
    assert scene.band_names == ("blue", "green", "red", "nir")
    assert scene.crs.to_epsg() == 3857


def _vrt(path: Path, source: str, relative: bool = False) -> Path:
    path.write_text(
        '<VRTDataset rasterXSize="64" rasterYSize="64"><SRS>EPSG:32645</SRS>'
        "<GeoTransform>500000, 10, 0, 2800000, 0, -10</GeoTransform>"
        '<VRTRasterBand dataType="UInt16" band="1"><SimpleSource>'
        f'<SourceFilename relativeToVRT="{int(relative)}">{source}</SourceFilename><SourceBand>1</SourceBand>'
        "</SimpleSource></VRTRasterBand></VRTDataset>"
    )
    return path


def test_a_vrt_of_local_geotiffs_opens(tmp_path: Path) -> None:
    folder = scene_folder(tmp_path / "s", size=64)
    scene = open_scene(_vrt(tmp_path / "mosaic.vrt", "s/B02.tif", relative=True))
    assert scene.width == 64 and scene.bands["blue"].href.endswith("mosaic.vrt")
    import rasterio

    with rasterio.open(folder / "B02.tif") as band:
        np.testing.assert_array_equal(scene.read()[0], band.read(1).astype(np.float32))


@pytest.mark.parametrize(
    "source", ["/vsicurl/http://169.254.169.254/x.tif", "http://127.0.0.1/x.tif", "/etc/passwd"]
)
def test_a_vrt_reading_anything_but_local_geotiffs_is_refused(tmp_path: Path, source: str) -> None:
    with pytest.raises(RasterRefusedError, match="may only read local GeoTIFFs"):
        open_scene(_vrt(tmp_path / "evil.vrt", source))
