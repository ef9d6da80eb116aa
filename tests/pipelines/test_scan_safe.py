"""A Sentinel-2 product as downloaded (SAFE folder or zip) scans like the same bands as GeoTIFFs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import pytest
from click.testing import CliRunner

from fieldtruth.detectors.bundle import load_bundle
from fieldtruth.detectors.scangrid import detect_like_a_scan, scan_grid
from fieldtruth.ingest.scene import open_scene
from fieldtruth.ingest.sources import open_imagery
from fieldtruth.pipelines.cli import cli
from fieldtruth.tests.data.safe import PRODUCT, safe_product, scl_layer, write_scl, zip_product

CLOUD = (300, 420, 0, 200)  # a cloud over part of the scene (rows, columns of 10 m pixels)


@pytest.fixture(scope="module")
def twins(small_scene: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The small scene as GeoTIFFs with its SCL, and as a SAFE folder and zip (with the BOA offset)."""
    root = tmp_path_factory.mktemp("twins")
    tif = root / "tif"
    shutil.copytree(small_scene, tif)
    (tif / "scene.json").unlink()  # its id would differ from the product's, nothing else
    scl = scl_layer((640, 640), CLOUD)
    write_scl(tif / "SCL.tif", scl, tif / "B02.tif")
    safe = safe_product(tif, root / "safe", scl=scl)
    return {"tif": tif, "safe": safe, "zip": zip_product(safe, root / "product.zip")}


@pytest.mark.slow
def test_a_product_folder_and_zip_detect_what_the_geotiffs_do(twins: dict[str, Path],
                                                              quick_bundle: Path) -> None:
    bundle = load_bundle(quick_bundle)
    reference = open_scene(twins["tif"])
    grid = scan_grid(bundle, reference, tile_size=256)
    expected = detect_like_a_scan(bundle, reference, grid, threshold=0.05)
    assert expected, "the comparison needs detections"
    for kind in ("safe", "zip"):
        (scene,) = open_imagery(twins[kind])
        assert detect_like_a_scan(bundle, scene, grid, threshold=0.05) == expected


@pytest.mark.slow
def test_scanning_a_zipped_product_gives_the_detections_of_its_geotiffs(
        twins: dict[str, Path], quick_bundle: Path, tmp_path: Path) -> None:
    runs = {}
    for kind in ("tif", "zip"):
        out = tmp_path / kind
        result = CliRunner().invoke(cli, ["-q", "scan", "--imagery", str(twins[kind]), "--detector",
                                          str(quick_bundle), "--out", str(out), "--tile-size", "256",
                                          "--workers", "1"], obj={})
        assert result.exit_code == 0, result.output
        runs[kind] = out
    found = {k: gpd.read_parquet(out / "detections.parquet").sort_values(["score", "tile_id"])
             for k, out in runs.items()}
    assert len(found["zip"]) == len(found["tif"]) > 0
    assert found["zip"].geometry.geom_equals_exact(found["tif"].geometry, 1e-9).all()
    assert list(found["zip"].score) == list(found["tif"].score)
    assert set(found["zip"].scene_id) == {PRODUCT}
    (described,) = json.loads((runs["zip"] / "run.json").read_text())["inputs"]["scenes"]
    assert described["metadata"]["processing_baseline"] == "05.10"
    assert described["band_offsets"] == {"blue": -1000.0, "green": -1000.0, "red": -1000.0, "nir": -1000.0}
