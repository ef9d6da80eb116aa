"""Leaflet layers and page furniture for offline lead maps, without Folium's jQuery-based popups.

Folium's ``Popup`` pastes raw HTML into a JavaScript template literal and needs jQuery. Here every
layer's data is one JSON document (:func:`fieldtruth.maps.offline.script_json`) whose strings were
HTML-escaped in Python before encoding, and Leaflet builds the markers, shapes, popups and tooltips.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import geopandas as gpd
from branca.element import MacroElement
from jinja2 import Template
from shapely.geometry import mapping

from fieldtruth.maps.offline import RawHTML, script_json

log = logging.getLogger(__name__)


class PointItem(NamedTuple):
    """One circle marker: position, Leaflet path options, and already-escaped popup/tooltip HTML."""

    lat: float
    lon: float
    style: Mapping[str, Any]
    popup_html: str
    tooltip_html: str


class JsonPoints(MacroElement):
    """Circle markers drawn by Leaflet from one JSON array, added to the parent layer."""

    _template = Template(
        """
{% macro script(this, kwargs) %}
(function () {
  var layer = {{ this._parent.get_name() }};
  var items = {{ this.data }};
  items.forEach(function (d) {
    var m = L.circleMarker([d.lat, d.lon], d.style);
    if (d.popup) { m.bindPopup(d.popup, {maxWidth: 360}); }
    if (d.tip) { m.bindTooltip(d.tip); }
    m.addTo(layer);
  });
})();
{% endmacro %}
"""
    )

    def __init__(self, items: Sequence[PointItem]) -> None:
        super().__init__()
        self._name = "JsonPoints"
        self.data = script_json(
            [
                {
                    "lat": round(i.lat, 7),
                    "lon": round(i.lon, 7),
                    "style": dict(i.style),
                    "popup": i.popup_html,
                    "tip": i.tooltip_html,
                }
                for i in items
            ]
        )


class JsonShapes(MacroElement):
    """Polygons drawn by ``L.geoJSON`` from one JSON document, added to the parent layer.

    Each feature's ``properties`` hold only ``style`` (Leaflet path options), ``tip`` (escaped HTML)
    and ``tipOptions``; nothing else from the data reaches the page.
    """

    _template = Template(
        """
{% macro script(this, kwargs) %}
(function () {
  var layer = {{ this._parent.get_name() }};
  L.geoJSON({{ this.data }}, {
    style: function (f) { return f.properties.style; },
    onEachFeature: function (f, l) {
      if (f.properties.tip) { l.bindTooltip(f.properties.tip, f.properties.tipOptions); }
    }
  }).addTo(layer);
})();
{% endmacro %}
"""
    )

    def __init__(
        self,
        shapes: gpd.GeoDataFrame,
        styles: Iterable[Mapping[str, Any]],
        tips: Iterable[str],
        tip_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self._name = "JsonShapes"
        features = [
            {
                "type": "Feature",
                "geometry": mapping(geom),
                "properties": {
                    "style": dict(style),
                    "tip": tip,
                    "tipOptions": dict(tip_options or {"sticky": True}),
                },
            }
            for geom, style, tip in zip(shapes.geometry, styles, tips, strict=True)
        ]
        self.data = script_json({"type": "FeatureCollection", "features": features})


class OfflineAttribution(MacroElement):
    """Replace Leaflet's linked attribution prefix by plain text (no link to a host)."""

    _template = Template(
        """
{% macro script(this, kwargs) %}
if ({{ this._parent.get_name() }}.attributionControl) {
  {{ this._parent.get_name() }}.attributionControl.setPrefix("Leaflet 1.9.4 (BSD-2-Clause), offline copy");
}
{% endmacro %}
"""
    )


def escape_rows(rows: Iterable[tuple[str, object]]) -> str:
    """Return an HTML ``<table>`` of label/value rows, every label and value HTML-escaped."""
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f'<table class="ft-popup">{cells}</table>'


PAGE_CSS = """
<style>
.ft-banner { position: fixed; top: 0; left: 0; right: 0; z-index: 2000; padding: 8px 14px;
  background: #7a1212; color: #fff; font: bold 15px/1.35 system-ui, sans-serif; text-align: center;
  box-shadow: 0 2px 6px rgba(0,0,0,.4); }
.ft-banner small { display: block; font-weight: normal; font-size: 12px; opacity: .95; }
.folium-map { top: 0; }
.leaflet-top { margin-top: 64px; }
.ft-legend { position: fixed; bottom: 52px; left: 10px; z-index: 1500; max-width: 330px;
  background: rgba(255,255,255,.95); border: 1px solid #888; border-radius: 4px; padding: 8px 10px;
  font: 12px/1.4 system-ui, sans-serif; color: #111; }
.ft-legend h4 { margin: 2px 0 4px; font-size: 13px; }
.ft-legend .sw { display: inline-block; width: 12px; height: 12px; margin-right: 6px;
  vertical-align: -2px; border: 1px solid #333; }
.ft-legend .sw.round { border-radius: 50%; }
.ft-legend svg { vertical-align: -3px; margin-right: 6px; }
.ft-popup th { text-align: left; padding-right: 8px; vertical-align: top; }
.ft-popup td { word-break: break-word; }
.ft-popup code, .ft-cmd { font: 11px/1.3 monospace; background: #f2f2f2; padding: 2px; display: block; }
.ft-nocov { fill: url(#ft-hatch-dark); }
.ft-partial { fill: url(#ft-hatch-light); }
.ft-nocov-label { background: rgba(40,40,40,.85); color: #fff; border: 0; font-weight: bold; }
.leaflet-container { background: #eef0ea; }
</style>
"""

SVG_PATTERNS = """
<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>
<pattern id="ft-hatch-dark" width="10" height="10" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
<rect width="10" height="10" fill="#6b6b6b" fill-opacity="0.45"/>
<line x1="0" y1="0" x2="0" y2="10" stroke="#222" stroke-width="3" stroke-opacity="0.6"/></pattern>
<pattern id="ft-hatch-light" width="10" height="10" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)">
<rect width="10" height="10" fill="#9a9a9a" fill-opacity="0.2"/>
<line x1="0" y1="0" x2="0" y2="10" stroke="#444" stroke-width="1.5" stroke-opacity="0.5"/></pattern>
</defs></svg>
"""


def page_furniture(banner_html: str, legend_html: str) -> list[tuple[str, RawHTML]]:
    """Return (name, element) pairs for the page: CSS and hatch patterns, the banner, the legend."""
    return [
        ("ft_patterns", RawHTML(SVG_PATTERNS)),
        ("ft_banner", RawHTML(f'<div class="ft-banner" role="alert">{banner_html}</div>')),
        ("ft_legend", RawHTML(f'<div class="ft-legend">{legend_html}</div>')),
    ]


def swatch(colour: str, round_: bool = False) -> str:
    """Return a legend colour swatch (``colour`` must be a trusted CSS colour)."""
    return f'<span class="sw{" round" if round_ else ""}" style="background:{colour}"></span>'


def hatch_swatch(pattern: str) -> str:
    """Return a legend swatch filled with one of the page's hatch patterns."""
    return (
        f'<svg width="14" height="14"><rect width="14" height="14" fill="url(#{pattern})" '
        'stroke="#333"/></svg>'
    )
