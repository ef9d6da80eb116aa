"""Hostile STAC catalogues and declarations get one clear line each, never a traceback or a hang."""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldtruth.ingest import _stac_walk
from fieldtruth.ingest.errors import RefusedInputError, SectorDeclarationError, StacError
from fieldtruth.ingest.sectors import load_declaration
from fieldtruth.ingest.sources import open_imagery
from fieldtruth.tests.data.hostile import stac_catalog
from fieldtruth.tests.data.rasters import scene_folder
from fieldtruth.tests.data.sectors import write_declaration
from fieldtruth.tests.data.stac import static_catalog


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and len(text) < 600, text
    return text


@pytest.mark.parametrize("links", [
    [("child", "./catalog.json")],                      # a child that is itself
    [("child", "./a/catalog.json")],                    # a -> b -> back to the root
])
def test_a_looping_catalogue_is_one_clear_error(tmp_path: Path, links: list[tuple[str, str]]) -> None:
    root = stac_catalog(tmp_path / "catalog.json", links)
    stac_catalog(tmp_path / "a" / "catalog.json",
                 [("child", "../b/catalog.json"), ("parent", "../catalog.json")])
    stac_catalog(tmp_path / "b" / "catalog.json", [("child", "../catalog.json")])
    with pytest.raises(StacError, match="links loop") as caught:
        open_imagery(root)
    _one_line(caught.value)


def test_self_and_parent_links_are_not_followed_and_shared_children_are_read_once(tmp_path: Path) -> None:
    folder = scene_folder(tmp_path / "stac" / "s", size=64)
    root = static_catalog(tmp_path / "stac", {"s": folder})
    stac_catalog(tmp_path / "stac" / "x" / "catalog.json",
                 [("self", "./catalog.json"), ("parent", "../catalog.json"), ("child", "../s/s.json")])
    import json

    document = json.loads(root.read_text())
    document["links"] += [{"rel": "self", "href": "./catalog.json"},
                          {"rel": "child", "href": "./x/catalog.json"}]
    root.write_text(json.dumps(document))
    assert [s.id for s in open_imagery(root)] == ["s"]


def test_a_deep_chain_is_refused(tmp_path: Path) -> None:
    folder = tmp_path
    for _ in range(_stac_walk.MAX_DEPTH + 2):
        stac_catalog(folder / "catalog.json", [("child", "./c/catalog.json")])
        folder = folder / "c"
    stac_catalog(folder / "catalog.json", [])
    with pytest.raises(StacError, match="deep") as caught:
        open_imagery(tmp_path / "catalog.json")
    _one_line(caught.value)


def test_a_huge_fan_out_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_stac_walk, "MAX_DOCUMENTS", 50)
    children = [("child", f"./c{i}.json") for i in range(200)]
    for i in range(200):
        stac_catalog(tmp_path / f"c{i}.json", [])
    with pytest.raises(StacError, match="over 50 documents") as caught:
        open_imagery(stac_catalog(tmp_path / "catalog.json", children))
    _one_line(caught.value)


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, "[1, 2]", '{"type": "Catalog", "links": 5}',
                                  '{"type": "Catalog", "links": [{"rel": "child", "href": 7}]}',
                                  '{"type": "Catalog", "links": [{"rel": "child", "href": "https://x.org/c.json"}]}',
                                  '{"type": "Catalog", "links": [{"rel": "child", "href": "./absent.json"}]}',
                                  '{"type": "Feature", "id": 5}', '{"type": "Nonsense"}', "\xff\xfe"])
def test_malformed_catalogues_are_one_clear_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(text, encoding="latin-1")
    with pytest.raises(StacError) as caught:
        open_imagery(path)
    _one_line(caught.value)


def test_a_link_with_gdal_syntax_is_refused(tmp_path: Path) -> None:
    root = stac_catalog(tmp_path / "catalog.json", [("child", "/vsicurl/http://127.0.0.1:9/c.json")])
    with pytest.raises(RefusedInputError, match="not a plain local path"):
        open_imagery(root)


@pytest.mark.parametrize(("extra", "message"), [
    ({"colour": "red"}, "unknown key 'colour'"),
    ({1: "x"}, "key '1' is not text"),
    ({True: "x"}, "is not text"),
    ({"base_dir": "/"}, "unknown key 'base_dir'"),
    ({"geometry": {"crs": "EPSG:4326", None: 3}}, "key 'geometry.None' is not text"),
    ({"keep": {"a": 1}}, "'keep'"),
])
def test_a_declaration_with_unknown_or_non_text_keys_is_one_clear_error(tmp_path: Path, extra: dict,
                                                                       message: str) -> None:
    import yaml

    path = write_declaration(tmp_path / "d.yaml", ["sites.csv"])
    document = yaml.safe_load(path.read_text())
    document.update(extra)
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(SectorDeclarationError, match=message) as caught:
        load_declaration(path)
    _one_line(caught.value)


@pytest.mark.parametrize("text", ["? [a, b]\n: c\n", "name: a\n  secret: : [\n", "a: &a [*a]\n", "- 1\n- 2\n",
                                  "name: !!python/object:os.system x\n"])
def test_broken_declarations_are_one_line_that_quotes_nothing(tmp_path: Path, text: str) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(text)
    with pytest.raises(SectorDeclarationError) as caught:
        load_declaration(path)
    assert "secret" not in _one_line(caught.value)
