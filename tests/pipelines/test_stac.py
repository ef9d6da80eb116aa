"""STAC Items of a run folder (restricted and shared) and of a detector bundle (MLM), validated offline."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import geopandas as gpd
import pystac
import pytest
import shapely
import torch
from click.testing import CliRunner
from pystac.errors import STACValidationError

from fieldtruth.detectors.bundle import load_bundle, save_bundle
from fieldtruth.detectors.card import ModelCard
from fieldtruth.detectors.metrics import CardMetrics
from fieldtruth.detectors.registry import build_model
from fieldtruth.pipelines.cli import cli
from fieldtruth.pipelines.stacitem import imagery_range, refresh_run_items, write_run_items
from fieldtruth.pipelines.stacmodel import mlm_name
from fieldtruth.review.ledger import Ledger
from fieldtruth.runfiles import RunFiles
from fieldtruth.tests.data.stacschemas import validate_offline
from fieldtruth.tests.maps.test_leads_fixture import make_map_run

LABEL = "https://stac-extensions.github.io/label/v1.0.1/schema.json"
MLM = "https://stac-extensions.github.io/mlm/v1.4.0/schema.json"
#: Files of a run folder the shared Item must never reference.
RESTRICTED_FILES = ("detections.parquet", "coverage.parquet", "review.sqlite", "run.json", "model_card.json",
                    "risk.parquet", "risk.json", "sectors.parquet", "leads_restricted", "map_keys.json",
                    "heatmap.tif", "model.stac.json")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = make_map_run(tmp_path_factory.mktemp("stac") / "run").path
    files = RunFiles(run)
    files.maps.mkdir(exist_ok=True)
    for tier in ("restricted", "shared"):
        files.leads_map(tier).write_text("<html></html>", encoding="utf-8")
    files.map_keys.write_text("{}", encoding="utf-8")
    files.risk_report.write_text("{}", encoding="utf-8")
    with Ledger.open(files.ledger) as ledger:
        ledger.register_sites(files.detections)
    write_run_items(run)
    return run


def _item(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_run_item_validates_and_describes_the_leads_with_the_label_extension(run: Path) -> None:
    item = _item(run / "run.stac.json")
    assert LABEL in item["stac_extensions"] and LABEL in validate_offline(item)
    props = item["properties"]
    assert props["label:type"] == "vector" and props["label:tasks"] == ["detection"]
    assert props["label:properties"] == ["label"]
    detections = gpd.read_parquet(run / "detections.parquet")
    counts = {c["name"]: c["count"] for c in props["label:overviews"][0]["counts"]}
    assert counts == detections["label"].value_counts().to_dict()
    assert props["datetime"] == "2026-01-15T00:00:00Z", "the one scene's acquisition"
    assert props["fieldtruth:access"] == "restricted"
    assert "not findings" in props["description"]


def test_the_run_item_footprint_is_the_union_of_the_covered_tile_cores(run: Path) -> None:
    item = _item(run / "run.stac.json")
    coverage = gpd.read_parquet(run / "coverage.parquet").to_crs(4326)
    covered = shapely.union_all(coverage[coverage.status.isin(["covered", "partial"])].geometry.to_numpy())
    footprint = shapely.geometry.shape(item["geometry"])
    assert footprint.symmetric_difference(covered).area < 1e-6 * covered.area
    others = coverage[~coverage.status.isin(["covered", "partial"])]
    not_covered = shapely.union_all(others.geometry.to_numpy())
    assert footprint.intersection(not_covered).area < 1e-6 * covered.area
    assert item["bbox"] == pytest.approx(list(covered.bounds), abs=1e-6)


def test_every_run_asset_is_marked_restricted_or_shared_and_secrets_are_never_assets(run: Path) -> None:
    item = _item(run / "run.stac.json")
    assets = item["assets"]
    assert {"detections", "coverage", "review", "run", "model-card", "risk", "risk-report", "sectors",
            "map-restricted"} <= set(assets)
    shared = {key for key, asset in assets.items() if asset["fieldtruth:access"] == "shared"}
    assert shared == {"risk-shared", "map-shared"}
    for key, asset in assets.items():
        assert asset["fieldtruth:access"] in asset["roles"], key
        assert sum(role in ("restricted", "shared") for role in asset["roles"]) == 1, key
        assert (run / asset["href"]).is_file() and not Path(asset["href"]).is_absolute()
    assert "map_keys" not in json.dumps(item), "the map keys are secret: never an asset"
    assert not any(a["href"].startswith("tiles") for a in assets.values())


def test_the_shared_item_references_nothing_restricted_and_names_no_local_path(run: Path) -> None:
    text = (run / "run-shared.stac.json").read_text(encoding="utf-8")
    item = json.loads(text)
    validate_offline(item)
    assert set(item["assets"]) == {"risk-shared", "map-shared"}
    assert all(a["fieldtruth:access"] == "shared" and "shared" in a["roles"] for a in item["assets"].values())
    assert item["properties"]["fieldtruth:access"] == "shared" and item["links"] == []
    for name in RESTRICTED_FILES:
        assert name not in text, name
    assert str(run.parent) not in text and "/tmp" not in text
    assert "label:overviews" not in text, "counts of leads stay in the restricted Item"
    restricted = _item(run / "run.stac.json")
    assert item["geometry"] == restricted["geometry"] and item["id"] == restricted["id"] + "-shared"


def test_the_imagery_dates_come_from_the_scenes_else_from_the_run() -> None:
    scenes = {"inputs": {"scenes": [{"acquired": "2024-02-03T05:10:00Z"}, {"acquired": "2024-01-20T05:00:00"},
                                    {"acquired": None}]}, "imagery_dates": "2020-01-01"}
    start, end = imagery_range(scenes)
    assert (start.isoformat(), end.isoformat()) == ("2024-01-20T05:00:00+00:00", "2024-02-03T05:10:00+00:00")
    start, end = imagery_range({"imagery_dates": "2026-01-15/2026-03-15"})
    assert (start.date().isoformat(), end.date().isoformat()) == ("2026-01-15", "2026-03-15")


def test_a_range_of_dates_is_written_as_start_and_end(tmp_path: Path) -> None:
    run = make_map_run(tmp_path / "run").path
    (run / "run.json").write_text(json.dumps({"imagery_dates": "2026-01-15/2026-03-15"}))
    props = _item(write_run_items(run)[0])["properties"]
    assert props["datetime"] is None
    assert props["start_datetime"].startswith("2026-01-15") and props["end_datetime"].startswith("2026-03-15")


def test_a_run_without_covered_tiles_has_no_footprint(tmp_path: Path) -> None:
    run = make_map_run(tmp_path / "run").path
    coverage = gpd.read_parquet(run / "coverage.parquet")
    coverage.assign(status="not covered").to_parquet(run / "coverage.parquet")
    item = _item(write_run_items(run)[0])
    assert item["geometry"] is None and "bbox" not in item
    validate_offline(item)


def test_items_are_not_written_for_a_folder_that_is_not_a_finished_scan(tmp_path: Path) -> None:
    assert refresh_run_items(tmp_path) is False
    assert not (tmp_path / "run.stac.json").exists()


def test_the_offline_validator_catches_a_broken_item_and_fetches_no_schema(run: Path) -> None:
    item = _item(run / "run.stac.json")
    del item["properties"]["label:type"]
    with pytest.raises(STACValidationError, match="label"):
        validate_offline(item)
    item = _item(run / "run.stac.json")
    item["stac_extensions"].append("https://stac-extensions.github.io/sat/v1.0.0/schema.json")
    with pytest.raises(LookupError, match="not shipped"):
        validate_offline(item)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = build_model("centrenet", {}).eval()
    card = ModelCard(
        architecture="centrenet",
        architecture_args={},
        bands=("blue", "green", "red", "nir"),
        gsd_m=10.0,
        norm_mean=(0.08, 0.09, 0.1, 0.2),
        norm_std=(0.03, 0.03, 0.04, 0.06),
        classes=("brick_kiln", "fishing camp"),
        receptive_field_px=model.receptive_field_px,
        name="kilns v2",
        metrics=CardMetrics.from_dict(
            {
                "overall": {
                    "precision": 0.81,
                    "recall": 0.74,
                    "f1": 0.77,
                    "average_precision": 0.7,
                    "tp": 37,
                    "fp": 9,
                    "fn": 13,
                    "n_labels": 50,
                }
            }
        ),
    )
    path = tmp_path_factory.mktemp("bundle") / "kilns.safetensors"
    save_bundle(path, model, card)
    return path


def test_bundle_describe_stac_is_a_valid_mlm_item_with_the_card_and_the_bundle_checksum(bundle: Path) -> None:
    result = CliRunner().invoke(cli, ["bundle", "describe", str(bundle), "--stac"], obj={})
    assert result.exit_code == 0, result.output
    item = json.loads(result.output)
    assert MLM in validate_offline(item)
    props = item["properties"]
    assert props["mlm:name"] == "kilns-v2" and props["mlm:architecture"] == "centrenet"
    assert props["mlm:tasks"] == ["object-detection"] and props["mlm:framework"] == "PyTorch"
    assert props["mlm:framework_version"] == torch.__version__.split("+")[0]
    assert props["mlm:accelerator"] == "amd64"
    (model_input,) = props["mlm:input"]
    assert model_input["bands"] == ["blue", "green", "red", "nir"]
    assert model_input["input"]["shape"] == [-1, 4, -1, -1]
    assert [s["mean"] for s in model_input["value_scaling"]] == [0.08, 0.09, 0.1, 0.2]
    assert [s["stddev"] for s in model_input["value_scaling"]] == [0.03, 0.03, 0.04, 0.06]
    (output,) = props["mlm:output"]
    assert [c["description"] for c in output["classification:classes"]] == ["brick_kiln", "fishing camp"]
    loaded = load_bundle(bundle)
    assert props["mlm:total_parameters"] == sum(p.numel() for p in loaded.model.parameters())
    asset = item["assets"]["model"]
    assert asset["href"] == "kilns.safetensors" and "mlm:model" in asset["roles"]
    assert asset["file:checksum"] == "1220" + hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert asset["file:size"] == bundle.stat().st_size
    assert pystac.Item.from_dict(item).id == f"fieldtruth-model-{loaded.sha256[:16]}"


def test_bundle_describe_prints_the_card_for_people_and_takes_a_published_href(bundle: Path) -> None:
    result = CliRunner().invoke(cli, ["bundle", "describe", str(bundle)], obj={})
    assert result.exit_code == 0, result.output
    assert "kilns v2" in result.output and "precision 0.81" in result.output
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() in result.output
    assert "blue, green, red, nir at 10 m" in result.output and "limits" in result.output
    url = "https://models.example.org/kilns.safetensors"
    result = CliRunner().invoke(cli, ["bundle", "describe", str(bundle), "--stac", "--href", url], obj={})
    assert json.loads(result.output)["assets"]["model"]["href"] == url


def test_bundle_describe_refuses_a_file_that_is_not_a_bundle(tmp_path: Path) -> None:
    fake = tmp_path / "model.safetensors"
    fake.write_bytes(b"\x00" * 64)
    result = CliRunner().invoke(cli, ["bundle", "describe", str(fake), "--stac"], obj={})
    assert result.exit_code == 1 and str(fake) in result.output and result.output.startswith("error:")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("kilns v2", "kilns-v2"),
        ("2024 camps", "m-2024-camps"),
        ("fieldtruth-centrenet", "fieldtruth-centrenet"),
    ],
)
def test_card_names_become_mlm_names(name: str, expected: str) -> None:
    assert mlm_name(name) == expected
