"""Small leaks: shared outputs name no local path, user or machine; passphrases are checked trimmed.

Before: the shared map embedded the model card with the absolute local paths of the training imagery
(``/home/<user>/...``), and a passphrase of spaces sealed a restricted map.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from fieldtruth.maps.crypto import open_sealed, seal
from fieldtruth.maps.errors import MapInputError
from fieldtruth.maps.leads import build_leads_map
from fieldtruth.maps.public import REMOVED, public_card
from fieldtruth.maps.risk import build_risk_cells, write_risk
from fieldtruth.tests.data.runfolder import make_run_folder

USER = "sentinel-user-x"


def _card(tmp_path: Path) -> dict:
    return {
        "architecture": "centrenet",
        "classes": ["brick_kiln"],
        "licence": "CC-BY-4.0",
        "training_data": [
            {
                "href": f"/home/{USER}/data/busan/B04.tif",
                "sha256": "ab" * 32,
                "size": 10,
                "item_id": "busan",
                "source": f"/home/{USER}/data/busan",
                "licence": "CC-BY-4.0",
            },
            {"href": f"C:\\Users\\{USER}\\scenes\\genoa.tif", "item_id": "genoa"},
            {"href": f"file:///mnt/{USER}/klang.tif", "item_id": "klang"},
        ],
        "split": {"train": [f"{tmp_path}/scenes/busan", "data/genoa"], "val": ["klang"]},
        "metrics": {
            "overall": {"precision": 0.8},
            "measured_on": f"~/{USER}/eval",
            "host": socket.gethostname(),
            "report": f"https://example.org/report-made-on-{socket.gethostname()}.html",
        },
    }


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    run = make_run_folder(tmp_path / "run", seed=6).path
    (run / "model_card.json").write_text(json.dumps(_card(tmp_path)))
    doc = json.loads((run / "run.json").read_text())
    doc["imagery_dates"] = "2026-01-15/2026-03-15"
    doc["config"] = {"imagery": f"/home/{USER}/imagery", "out": str(run)}
    (run / "run.json").write_text(json.dumps(doc))
    write_risk(run, build_risk_cells(run, []), k=1)
    return run


def _leaks(text: str, tmp_path: Path) -> list[str]:
    names = [USER, str(tmp_path), str(Path.home()) + "/", "file://", "C:\\\\Users"]
    names += [socket.gethostname()] if len(socket.gethostname()) >= 4 else []
    return [n for n in names if n in text]


def test_shared_outputs_name_no_local_path_user_or_machine(run_dir: Path, tmp_path: Path) -> None:
    page = build_leads_map(run_dir, tier="shared").read_text(encoding="utf-8")
    assert _leaks(page, tmp_path) == []
    assert "2026-01-15/2026-03-15" in page, "dates are not paths"
    assert '"busan"' in page and "ab" * 32 in page, "the card keeps scene ids and checksums"
    assert _leaks((run_dir / "risk_shared.geojson").read_text(encoding="utf-8"), tmp_path) == []
    restricted = build_leads_map(run_dir, encrypt=False, chip_px=0, quicklook_px=0).read_text(
        encoding="utf-8"
    )
    assert USER not in restricted, "the restricted map carries the public card too"


def test_public_card_keeps_what_a_reader_needs() -> None:
    card = public_card(
        {
            "training_data": [{"href": "/home/a/x.tif", "sha256": "cd" * 32, "item_id": "x"}],
            "intended_use": "leads for field verification",
            "url": "https://example.org/card",
        }
    )
    assert card == {
        "training_data": [{"item_id": "x", "sha256": "cd" * 32}],
        "intended_use": "leads for field verification",
        "url": "https://example.org/card",
    }
    assert public_card({"split": {"train": ["/home/a/x"]}})["split"]["train"] == [REMOVED]


@pytest.mark.parametrize(
    ("passphrase", "match"),
    [
        (" " * 40, "none"),
        ("\t\n  \u3000 ", "none"),
        ("   short  wd   ", "once trimmed"),
        ("password1234", "strength score"),
        ("aaaaaaaaaaaaaaaa", "strength score"),
        ("qwertyuiop123", "strength score"),
    ],
)
def test_weak_passphrases_are_refused(passphrase: str, match: str) -> None:
    with pytest.raises(MapInputError, match=match) as caught:
        seal(b"sites", passphrase)
    assert passphrase.strip() not in str(caught.value) or not passphrase.strip()


def test_a_passphrase_is_sealed_trimmed(run_dir: Path) -> None:
    sealed = seal(b"sites", "  lantern copper meadow ninety \n")
    assert open_sealed(sealed, "lantern copper meadow ninety") == b"sites"
    out = build_leads_map(run_dir, passphrase=" lantern copper meadow ninety ", chip_px=0, quicklook_px=0)
    assert out.is_file()
