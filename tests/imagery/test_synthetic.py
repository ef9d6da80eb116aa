"""Synthetic scenes: seeded bytes, Sentinel-2-like bands in UTM, labels on the drawn targets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer

from fieldtruth.imagery.synthetic import BAND_FILES, SyntheticScene, generate_scene
from fieldtruth.ingest.scene import open_scene


def digests(scene: SyntheticScene) -> dict[str, str]:
    return {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in scene.band_paths.items()}


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> SyntheticScene:
    return generate_scene(tmp_path_factory.mktemp("synthetic") / "s11", seed=11, size=512)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path, scene: SyntheticScene) -> None:
    again = generate_scene(tmp_path / "again", seed=11, size=512)
    assert digests(again) == digests(scene)
    assert (tmp_path / "again" / "labels.geojson").read_bytes() == scene.labels_path.read_bytes()
    other = generate_scene(tmp_path / "other", seed=12, size=512)
    assert all(a != b for a, b in zip(digests(other).values(), digests(scene).values(), strict=True))


def test_bands_are_tiled_uint16_cogs_in_utm(scene: SyntheticScene) -> None:
    assert sorted(p.name for p in scene.path.glob("*.tif")) == sorted(f"{stem}.tif" for stem in BAND_FILES)
    for path in scene.band_paths.values():
        with rasterio.open(path) as src:
            assert src.crs.to_epsg() == 32645 and src.crs.is_projected
            assert "UTM zone 45N" in src.crs.to_wkt()
            assert src.res == (10.0, 10.0) and src.shape == (512, 512)
            assert src.dtypes == ("uint16",) and src.nodata in (None, 0)
            assert src.profile["tiled"] and src.block_shapes == [(256, 256)] and src.overviews(1)
            band = src.read(1)
        assert band.min() > 0 and band.max() < 10000  # never all-zero (that would read as invalid)


def test_scene_json_and_ingest_agree(scene: SyntheticScene) -> None:
    meta = json.loads(scene.scene_json_path.read_text())
    assert meta["platform"] == "synthetic" and meta["licence"] == "CC0-1.0"
    assert meta["source"] == "fieldtruth synthetic generator seed 11"
    assert meta["labels"] == scene.counts and meta["size"] == [512, 512]
    opened = open_scene(scene.path)
    assert opened.band_names == ("blue", "green", "red", "nir")
    assert opened.acquired == scene.acquired and opened.crs == scene.crs
    assert (opened.width, opened.height) == (512, 512)


def test_labels_are_wgs84_boxes_of_the_sites(scene: SyntheticScene) -> None:
    features = json.loads(scene.labels_path.read_text())["features"]
    assert (
        len(features) == len(scene.sites)
        and scene.counts["brick_kiln"] >= 3
        and scene.counts["fishing_camp"] >= 2
    )
    to_utm = Transformer.from_crs("EPSG:4326", scene.crs, always_xy=True)
    for feature, site in zip(features, scene.sites, strict=True):
        assert feature["properties"]["class"] == site.label
        lon, lat = np.array(feature["geometry"]["coordinates"][0]).T
        assert 80 < lon.min() < 95 and 20 < lat.min() < 30
        cols, rows = ~scene.transform * to_utm.transform(lon, lat)
        assert (rows.min(), cols.min(), rows.max(), cols.max()) == pytest.approx(tuple(site.box), abs=0.05)


def test_labels_fall_on_the_drawn_targets(scene: SyntheticScene) -> None:
    bands = {name: rasterio.open(path).read(1).astype(float) for name, path in scene.band_paths.items()}
    redness = bands["red"] / (bands["green"] + 1)
    bright = bands["blue"] + bands["green"] + bands["red"]
    for site in scene.sites:
        r0, c0, r1, c1 = (
            int(np.floor(site.box.row0)),
            int(np.floor(site.box.col0)),
            int(np.ceil(site.box.row1)),
            int(np.ceil(site.box.col1)),
        )
        inside = (slice(r0, r1), slice(c0, c1))
        if site.label == "brick_kiln":
            # a red ring around a dark centre
            assert redness[inside].max() > 1.6 > np.median(redness)
            cr, cc = (int(v) for v in site.centre)
            assert bright[cr, cc] < 0.6 * np.percentile(bright[inside], 90)
        else:
            # bright huts beside the water (the river is far darker in the near-infrared)
            assert bright[inside].max() > 7000 > np.percentile(bright, 99)
            around = bands["nir"][max(r0 - 8, 0) : r1 + 8, max(c0 - 8, 0) : c1 + 8]
            assert around.min() < 600


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="size"):
        generate_scene(tmp_path, size=64)
    with pytest.raises(ValueError, match="UTM"):
        generate_scene(tmp_path, size=256, epsg=4326)
    with pytest.raises(ValueError, match="n_kilns"):
        generate_scene(tmp_path, size=256, n_kilns=-1)
