"""``forget_everywhere`` also removes the site's raw detections from the per-tile results."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from pyproj import Transformer

from fieldtruth.pipelines.forget import forget_everywhere
from fieldtruth.review.ledger import Ledger
from fieldtruth.tests.data.runfolder import UTM, make_run_folder


def test_tile_results_lose_the_site_and_its_near_duplicates(tmp_path: Path) -> None:
    rf = make_run_folder(tmp_path / "run", seed=8)
    point = rf.detections.set_index("site_id").loc["site-0006", "geometry"]
    x, y = Transformer.from_crs("EPSG:4326", UTM, always_xy=True).transform(point.x, point.y)
    doc = json.loads((rf.path / "run.json").read_text())
    doc["grid"] = {"crs": UTM, "resolution": 10.0}
    (rf.path / "run.json").write_text(json.dumps(doc))
    (rf.path / "model_card.json").write_text(json.dumps({"min_distance_px": 3}))
    (rf.path / "tiles").mkdir()
    dets = [
        {"x": x, "y": y, "score": 0.9, "label": "brick_kiln"},
        {"x": x + 12.0, "y": y - 9.0, "score": 0.6, "label": "brick_kiln"},  # suppressed twin, 15 m away
        {"x": x + 400.0, "y": y, "score": 0.8, "label": "brick_kiln"},  # another site: kept
    ]
    tile = {"tile_id": "t00", "status": "ok", "valid_fraction": 1.0, "error": None, "detections": dets}
    (rf.path / "tiles" / "t00.json").write_text(json.dumps(tile))
    (rf.path / "tiles" / "t01.json").write_text(json.dumps({**tile, "tile_id": "t01", "detections": []}))
    report = forget_everywhere(rf.path, "site-0006", reason="community request", by="dpo1")
    assert report.rewritten[0] == "tiles/t00.json" and "tiles/t01.json" not in report.rewritten
    kept = json.loads((rf.path / "tiles" / "t00.json").read_text())["detections"]
    assert [d["x"] for d in kept] == [x + 400.0]
    for path in rf.path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for needle in (repr(x).encode(), repr(point.x).encode(), struct.pack("<d", point.y)):
                assert needle not in data, path
    with Ledger.open(rf.path / "review.sqlite") as led:
        assert led.verify().ok and "site-0006" in led.erased_sites()
