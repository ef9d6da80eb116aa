"""Static STAC catalogues by URL: walked through the network guard, each document fetched once, bounded.

Every test serves a published catalogue from a loopback server started here, which counts the requests it
receives; 127.0.0.2 plays a host that was never allowed (its count must stay zero).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from fieldtruth.imagery.read import read_chip
from fieldtruth.imagery.target import grid_for_scene
from fieldtruth.ingest import _stac_walk, remote
from fieldtruth.ingest.errors import RefusedInputError, StacError
from fieldtruth.ingest.scene import open_scene
from fieldtruth.ingest.sources import is_stac_api, open_imagery
from fieldtruth.tests.data.rangeserver import serve
from fieldtruth.tests.data.rasters import scene_folder
from fieldtruth.tests.data.stac import published_catalog, write_catalog

TARGET = "127.0.0.2"  # never allowed


def _allow(base: str) -> list[str]:
    return [base.removeprefix("http://")]  # host:port of this test's server only


def _documents(log: object) -> Counter[str]:
    return Counter(path for path, _ in log.requests if path.endswith(".json"))  # type: ignore[attr-defined]


@pytest.fixture()
def published(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    folders = {name: scene_folder(tmp_path / "scenes" / name, size=96, seed=seed)
               for name, seed in (("north", 1), ("south", 2))}
    published_catalog(tmp_path / "www", folders)
    return tmp_path / "www", folders


def test_a_published_catalogue_is_read_by_url_each_document_once(published: tuple[Path, dict]) -> None:
    root, folders = published
    with serve(root) as (base, log):
        scenes = open_imagery(f"{base}/catalog.json", allow_hosts=_allow(base))
        assert sorted(s.id for s in scenes) == ["north", "south"]
        assert _documents(log) == {"/catalog.json": 1, "/sub/catalog.json": 1, "/items/north/item.json": 1,
                                   "/items/south/item.json": 1}  # north is linked twice, fetched once
        north = next(s for s in scenes if s.id == "north")
        assert north.bands["nir"].href == f"{base}/items/north/B08.tif"  # relative to the item's URL
        local = open_scene(folders["north"])
        tile = next(iter(grid_for_scene(local, tile_size=64, halo=8)))
        remote_chip, local_chip = read_chip(north, tile), read_chip(local, tile)
    assert np.array_equal(remote_chip.data, local_chip.data) and remote_chip.valid.any()
    assert np.array_equal(remote_chip.valid, local_chip.valid)


def test_an_item_by_url_is_one_scene(published: tuple[Path, dict]) -> None:
    root, _ = published
    with serve(root) as (base, log):
        scenes = open_imagery(f"{base}/items/south/item.json", allow_hosts=_allow(base))
    assert [s.id for s in scenes] == ["south"] and _documents(log) == {"/items/south/item.json": 1}
    assert not is_stac_api(f"{base}/catalog.json") and is_stac_api(base)


def test_a_loopback_catalogue_is_refused_unless_allowed(published: tuple[Path, dict]) -> None:
    root, _ = published
    with serve(root) as (base, log), pytest.raises(RefusedInputError, match="127.0.0.1"):
        open_imagery(f"{base}/catalog.json")
    assert log.requests == []


@pytest.mark.parametrize("href", ["file:///etc/hostname", "file:../../scenes/north/item.json"])
def test_a_remote_catalogue_linking_to_a_local_file_is_refused(tmp_path: Path, href: str) -> None:
    write_catalog(tmp_path / "www" / "catalog.json", [{"rel": "child", "href": href}])
    with serve(tmp_path / "www") as (base, log), pytest.raises(StacError, match="not an http"):
        open_imagery(f"{base}/catalog.json", allow_hosts=_allow(base))
    assert _documents(log) == {"/catalog.json": 1}


def test_a_remote_item_naming_a_local_file_is_refused_and_a_rooted_path_stays_on_its_host(
        published: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(remote.GDAL_HTTP_OPTIONS, "GDAL_HTTP_MAX_RETRY", 0)  # the 404 below: no retries
    root, folders = published
    item_path = root / "items" / "north" / "item.json"
    item = json.loads(item_path.read_text())
    item["assets"]["B08"]["href"] = "file://" + str(folders["north"] / "B08.tif")
    item_path.write_text(json.dumps(item))
    with serve(root) as (base, _), pytest.raises(StacError, match="asset 'B08' is not an http"):
        open_imagery(f"{base}/items/north/item.json", allow_hosts=_allow(base))
    item["assets"]["B08"]["href"] = str(folders["north"] / "B08.tif")  # a rooted path: on the server
    item_path.write_text(json.dumps(item))
    with serve(root) as (base, log), pytest.raises(Exception, match=base):
        open_imagery(f"{base}/items/north/item.json", allow_hosts=_allow(base))
    assert any(path == str(folders["north"] / "B08.tif") for path, _ in log.requests)


def test_a_looping_remote_catalogue_is_one_error_after_two_documents(tmp_path: Path) -> None:
    write_catalog(tmp_path / "www" / "catalog.json", [{"rel": "child", "href": "./a/catalog.json"}])
    write_catalog(tmp_path / "www" / "a" / "catalog.json", [{"rel": "child", "href": "../catalog.json"}])
    with serve(tmp_path / "www") as (base, log), pytest.raises(StacError, match="links loop") as caught:
        open_imagery(f"{base}/catalog.json", allow_hosts=_allow(base))
    assert "\n" not in str(caught.value)
    assert _documents(log) == {"/catalog.json": 1, "/a/catalog.json": 1}


def test_depth_count_and_size_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "www"
    for _ in range(5):
        write_catalog(folder / "catalog.json", [{"rel": "child", "href": "./c/catalog.json"}])
        folder = folder / "c"
    write_catalog(folder / "catalog.json", [])
    monkeypatch.setattr(_stac_walk, "MAX_DEPTH", 3)
    with serve(tmp_path / "www") as (base, log):
        with pytest.raises(StacError, match="over 3 deep"):
            open_imagery(f"{base}/catalog.json", allow_hosts=_allow(base))
        assert len(_documents(log)) == 3
        monkeypatch.setattr(_stac_walk, "MAX_DEPTH", 16)
        monkeypatch.setattr(_stac_walk, "MAX_DOCUMENTS", 4)
        with pytest.raises(StacError, match="over 4 documents"):
            open_imagery(f"{base}/catalog.json", allow_hosts=_allow(base))
        monkeypatch.setattr(_stac_walk, "MAX_DOCUMENT_BYTES", 100)
        with pytest.raises(StacError, match="over 100 bytes"):
            open_imagery(f"{base}/catalog.json", allow_hosts=_allow(base))


def test_a_link_or_redirect_to_a_host_not_allowed_is_never_fetched(tmp_path: Path) -> None:
    with serve(tmp_path, host=TARGET) as (target, target_log):
        write_catalog(tmp_path / "www" / "catalog.json", [{"rel": "child", "href": f"{target}/catalog.json"}])
        with serve(tmp_path / "www") as (base, _), pytest.raises(RefusedInputError, match="127.0.0.2"):
            open_imagery(f"{base}/catalog.json", allow_hosts=_allow(base))
        with serve(tmp_path / "www", "redirect", redirect_to=target) as (base, log), \
                pytest.raises(RefusedInputError):
            open_imagery(f"{base}/r/catalog.json", allow_hosts=_allow(base))
        assert log.requests, "the allowed server was asked"
    assert target_log.requests == []


def test_an_unreachable_or_missing_document_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    with serve(tmp_path / "www") as (base, _), pytest.raises(StacError, match="HTTP 404") as caught:
        open_imagery(f"{base}/catalog.json", allow_hosts=_allow(base))
    assert "\n" not in str(caught.value)
