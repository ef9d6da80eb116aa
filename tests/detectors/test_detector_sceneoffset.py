"""Per-scene water-level offsets: what they measure, that scan, evaluate and training read the same
corrected pixels, and that a bad setting is refused."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import rasterio

from fieldtruth.detectors.bundle import load_bundle, save_bundle
from fieldtruth.detectors.card import ModelCard
from fieldtruth.detectors.data import load_training_scene
from fieldtruth.detectors.errors import BundleError
from fieldtruth.detectors.report import evaluate_scenes
from fieldtruth.detectors.sceneoffset import WATER_OFFSET, looks_like_water, prepare_scenes, water_offsets
from fieldtruth.detectors.train import TrainConfig
from fieldtruth.imagery.read import read_chip
from fieldtruth.imagery.target import grid_for_scene
from fieldtruth.ingest.scene import open_scene
from fieldtruth.tests.data.rasters import BAND_FILES, scene_folder, write_band

BANDS = ("blue", "green", "red", "nir")
WATER = np.array([400, 600, 350, 200])  # open water, per band
LAND = np.array([900, 1100, 1300, 2600])


def port(
    folder: Path, *, haze=(0, 0, 0, 0), size: int = 160, seed: int = 0, nodata: float | None = None
) -> Path:
    """Water on the left 40 %, land on the right, bright ships on the water, seeded noise; ``haze`` added."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    noise = rng.integers(0, 30, (size, size))
    for i, name in enumerate(BAND_FILES):
        data = np.where(np.arange(size)[None, :] < 0.4 * size, WATER[i], LAND[i]) + noise
        data[20:24, 10:13] = data[80:84, 30:33] = 2500
        data = data + haze[i]
        if nodata is not None:
            data[:, -16:] = nodata
        write_band(folder / f"{name}.tif", data, nodata=nodata)
    (folder / "labels.geojson").write_text(_ship_labels(open_scene(folder)))
    return folder


def test_offsets_bring_the_scenes_open_water_to_the_level(tmp_path: Path) -> None:
    offsets = water_offsets(open_scene(port(tmp_path / "p")), BANDS, WATER_OFFSET)
    assert list(offsets) == list(BANDS)
    for i, band in enumerate(BANDS):
        # the darkest 5 % of nir are water pixels; their median is the water level plus the noise's low end
        assert 1000 - WATER[i] - 30 <= offsets[band] <= 1000 - WATER[i], band


def test_a_hazy_copy_reads_the_same_once_offset_in_tiles_and_in_training(tmp_path: Path) -> None:
    haze = (2500, 1800, 1200, 900)  # a uniform additive haze, as cartagena's
    clear, hazy = port(tmp_path / "clear"), port(tmp_path / "hazy", haze=haze)
    raw = [open_scene(clear), open_scene(hazy)]
    prepared = prepare_scenes(raw, BANDS, WATER_OFFSET)
    for band, h in zip(BANDS, haze, strict=True):
        assert prepared[0].band_offsets[band] - prepared[1].band_offsets[band] == pytest.approx(h)
    tile = next(iter(grid_for_scene(raw[0], resolution=10.0, tile_size=96, halo=8)))
    before = [read_chip(s, tile, BANDS).data for s in raw]
    assert np.abs(before[0] - before[1]).max() >= 900  # the raw pixels differ by the haze
    after = [read_chip(s, tile, BANDS) for s in prepared]
    np.testing.assert_array_equal(after[0].data, after[1].data)
    trained = [load_training_scene(p, BANDS, WATER_OFFSET) for p in (clear, hazy)]
    np.testing.assert_array_equal(trained[0].data, trained[1].data)
    assert trained[1].provenance["band_offsets"] == prepared[1].band_offsets


def test_offsets_are_added_to_valid_pixels_only(tmp_path: Path) -> None:
    scene = prepare_scenes([open_scene(port(tmp_path / "p", nodata=0))], BANDS, WATER_OFFSET)[0]
    chip = read_chip(scene, next(iter(grid_for_scene(scene, resolution=10.0, tile_size=160, halo=0))), BANDS)
    assert not chip.valid[:, -16:].any() and chip.valid[:, :-16].all()
    assert (chip.data[:, ~chip.valid] == 0).all()
    water = chip.data[:, 40:60, 0:10]  # away from the ships
    assert np.abs(np.median(water, axis=(1, 2)) - 1000).max() <= 30


def test_pixels_missing_in_one_band_are_not_taken_for_water(tmp_path: Path) -> None:
    folder = port(tmp_path / "p")
    with rasterio.open(folder / "B08.tif") as src:
        nir, profile = src.read(1), src.profile
    nir[:, 100:120] = 0  # 12 % of the scene: nir missing, the other bands present
    with rasterio.open(folder / "B08.tif", "w", **profile) as dst:
        dst.write(nir, 1)
    offsets = water_offsets(open_scene(folder), BANDS, WATER_OFFSET)
    assert 1000 - WATER[3] - 30 <= offsets["nir"] <= 1000 - WATER[3]


def test_a_scene_without_open_water_is_flagged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert looks_like_water(
        water_offsets(open_scene(port(tmp_path / "port")), BANDS, WATER_OFFSET), WATER_OFFSET
    )
    inland = open_scene(
        scene_folder(tmp_path / "inland", size=96)
    )  # every pixel brighter in nir than in green
    with caplog.at_level("WARNING"):
        offsets = water_offsets(inland, BANDS, WATER_OFFSET)
    assert looks_like_water(offsets, WATER_OFFSET) is False
    assert "inland" in caplog.text and "not water" in caplog.text
    assert looks_like_water({"red": 1.0, "nir": 2.0}, WATER_OFFSET) is None


def test_a_scene_without_valid_pixels_gets_no_offsets(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    for name in BAND_FILES:
        write_band(folder / f"{name}.tif", np.zeros((64, 64)))
    assert water_offsets(open_scene(folder), BANDS, WATER_OFFSET) == {}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"method": "stretch"}, "method"),
        ({"reference_band": "swir16"}, "reference_band"),
        ({"dark_fraction": 0.0}, "dark_fraction"),
        ({"dark_fraction": 1.5}, "dark_fraction"),
        ({"level": "high"}, "level"),
        ({"spread": 1.0}, "method"),
    ],
)
def test_a_scene_offset_that_cannot_be_applied_is_refused(change: dict, words: str) -> None:
    spec = {**WATER_OFFSET, **change}
    with pytest.raises(ValueError, match=words):
        TrainConfig(scene_offset=spec)
    card = dict(
        architecture="centrenet",
        architecture_args={},
        bands=BANDS,
        gsd_m=10.0,
        norm_mean=(1.0,) * 4,
        norm_std=(1.0,) * 4,
        classes=("vessel",),
    )
    with pytest.raises(ValueError, match=words):
        ModelCard(**card, scene_offset=spec)
    with pytest.raises(BundleError, match="bundle.safetensors.*scene_offset"):
        ModelCard.from_dict({**card, "scene_offset": spec}, source="bundle.safetensors")
    with pytest.raises(BundleError, match="scene_offset"):
        ModelCard.from_dict({**card, "scene_offset": ["nir"]}, source="bundle.safetensors")


def test_a_training_config_without_a_mapping_for_scene_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="scene_offset: Input should be a valid dictionary"):
        TrainConfig.from_mapping({"scene_offset": None}, preset="vessels")
    assert TrainConfig.from_mapping({"scene_offset": {}}, preset="vessels").scene_offset == {}


def test_evaluate_reads_a_hazy_port_as_the_clear_one(tmp_path: Path, trained) -> None:
    bundle, _ = trained
    card = dataclasses.replace(bundle.card, bands=BANDS, scene_offset=dict(WATER_OFFSET), weights_sha256="")
    path = tmp_path / "offset.safetensors"
    save_bundle(path, bundle.model, card)
    with_offset = load_bundle(path)
    assert with_offset.card.scene_offset == WATER_OFFSET
    scenes = []
    for name, haze in (("clear", (0, 0, 0, 0)), ("hazy", (2500, 1800, 1200, 900))):
        scenes.append(port(tmp_path / name, haze=haze, size=192))
    results = [evaluate_scenes(with_offset, [p])[0].scores for p in scenes]
    assert results[0].ranked == results[1].ranked and results[0].ranked  # same scores, same matches
    plain = [evaluate_scenes(bundle, [p])[0].scores for p in scenes]
    assert plain[0].ranked != plain[1].ranked  # without the offsets the haze changes what is found


def _ship_labels(scene) -> str:
    import json

    features = []
    for r, c in ((20, 10), (80, 30)):
        x0, y0 = scene.transform * (c, r)
        x1, y1 = scene.transform * (c + 3, r + 4)
        ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
        features.append(
            {
                "type": "Feature",
                "properties": {"class": "brick_kiln"},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    return json.dumps(
        {
            "type": "FeatureCollection",
            "crs": {"type": "name", "properties": {"name": scene.crs.to_string()}},
            "features": features,
        }
    )
