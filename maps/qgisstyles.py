"""QGIS layer styles in a GeoPackage, so the export opens styled: leads by review status, cells by risk band.

QGIS reads a GeoPackage's ``layer_styles`` table (the table it writes itself with *Save style... In
database*) and applies the style marked ``useAsDefault`` when a layer is opened. Each style is a QML
document: here a categorised renderer on one field, with the colours of the HTML maps
(:data:`fieldtruth.maps.layers.STATUS_COLOURS`, :data:`fieldtruth.maps.layers.RISK_COLOURS`); cells not
covered by imagery are hatched, as on the maps, never drawn as low risk.
"""

from __future__ import annotations

import logging
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from fieldtruth.maps.errors import MapInputError
from fieldtruth.maps.layers import RISK_COLOURS, RISK_OPACITY, STATUS_COLOURS
from fieldtruth.maps.risk_score import NOT_COVERED

log = logging.getLogger(__name__)

#: The QGIS version the QML documents are written for (read by every QGIS 3 from 3.10 on).
QGIS_VERSION = "3.28.0"
#: Outline of every symbol: dark grey.
OUTLINE = "35,35,35,255"

#: The table QGIS creates to keep layer styles in a GeoPackage (its own column names and types).
LAYER_STYLES_SQL = """
CREATE TABLE IF NOT EXISTS layer_styles (
    id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256), f_table_schema TEXT(256),
    f_table_name TEXT(256), f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT,
    useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30),
    update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)"""


@dataclass(frozen=True)
class LayerStyle:
    """A categorised style for one layer of a GeoPackage.

    Attributes:
        layer: the GeoPackage table it styles.
        field: the field whose value picks the colour.
        colours: value -> ``#rrggbb``, in legend order.
        geometry: ``marker`` (points) or ``fill`` (polygons).
        name: the style's name in QGIS.
        description: shown in QGIS's style manager.
        opacity: fill opacity in [0, 1].
        hatched: values drawn hatched instead of filled (no data, never a low value).
    """

    layer: str
    field: str
    colours: Mapping[str, str]
    geometry: str
    name: str
    description: str
    opacity: float = 1.0
    hatched: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.geometry not in ("marker", "fill"):
            raise ValueError(f"geometry must be 'marker' or 'fill', got {self.geometry!r}")
        if not 0.0 <= self.opacity <= 1.0:
            raise ValueError(f"opacity must be in [0, 1], got {self.opacity!r}")

    def qml(self) -> str:
        """The style as a QGIS QML document."""
        root = ET.Element("qgis", version=QGIS_VERSION, styleCategories="Symbology")
        renderer = ET.SubElement(root, "renderer-v2", type="categorizedSymbol", attr=self.field,
                                 symbollevels="0", enableorderby="0", forceraster="0")
        categories = ET.SubElement(renderer, "categories")
        symbols = ET.SubElement(renderer, "symbols")
        for index, (value, colour) in enumerate(self.colours.items()):
            ET.SubElement(categories, "category", value=value, label=value, symbol=str(index), render="true")
            symbols.append(self._symbol(str(index), _rgba(colour, self.opacity), value in self.hatched))
        return ET.tostring(root, encoding="unicode", xml_declaration=False)

    def _symbol(self, name: str, rgba: str, hatched: bool) -> ET.Element:
        symbol = ET.Element("symbol", type=self.geometry, name=name, alpha="1", clip_to_extent="1",
                            force_rhr="0")
        if self.geometry == "marker":
            layer_class = "SimpleMarker"
            options = {"name": "circle", "color": rgba, "size": "3", "size_unit": "MM",
                       "outline_color": OUTLINE, "outline_width": "0.3", "outline_style": "solid"}
        else:
            layer_class = "SimpleFill"
            options = {"color": rgba, "style": "b_diagonal" if hatched else "solid",
                       "outline_color": OUTLINE, "outline_width": "0.2", "outline_style": "solid"}
        layer = ET.SubElement(symbol, "layer", attrib={"class": layer_class, "enabled": "1", "pass": "0",
                                                       "locked": "0"})
        option_map = ET.SubElement(layer, "Option", type="Map")
        for key, value in options.items():
            ET.SubElement(option_map, "Option", name=key, type="QString", value=value)
        return symbol


def _rgba(colour: str, opacity: float) -> str:
    """``#rrggbb`` and an opacity as QGIS's ``r,g,b,a`` (0-255)."""
    text = colour.lstrip("#")
    if len(text) != 6:
        raise ValueError(f"expected a colour as #rrggbb, got {colour!r}")
    red, green, blue = (int(text[i:i + 2], 16) for i in (0, 2, 4))
    return f"{red},{green},{blue},{round(255 * opacity)}"


def sites_style(layer: str = "sites") -> LayerStyle:
    """Leads coloured by review status, as on the restricted map."""
    return LayerStyle(layer, "status", STATUS_COLOURS, "marker", "fieldtruth review status",
                      "Leads by review status: unverified leads are not findings.")


def risk_style(layer: str = "risk_cells") -> LayerStyle:
    """Risk cells coloured by band; cells without imagery hatched grey (not covered, NOT low risk)."""
    return LayerStyle(layer, "band", RISK_COLOURS, "fill", "fieldtruth risk band",
                      "Risk cells by band; hatched: not covered by imagery, NOT low risk.",
                      opacity=RISK_OPACITY, hatched=(NOT_COVERED,))


def write_layer_styles(gpkg: Path, styles: Sequence[LayerStyle]) -> None:
    """Store ``styles`` in the GeoPackage's ``layer_styles`` table, each the default of its layer.

    A style already stored for a layer under the same name is replaced; the table is registered in
    ``gpkg_contents`` as attributes, as QGIS does.

    Raises:
        MapInputError: the file is not a GeoPackage, or a style names a layer it does not hold.
    """
    try:
        with closing(sqlite3.connect(gpkg)) as db, db:
            geometry_columns = dict(db.execute("SELECT table_name, column_name FROM gpkg_geometry_columns"))
            missing = [s.layer for s in styles if s.layer not in geometry_columns]
            if missing:
                raise MapInputError(f"GeoPackage {str(gpkg)!r} has no layer {missing!r} to style; it holds "
                                    f"{sorted(geometry_columns)!r}")
            db.execute(LAYER_STYLES_SQL)
            db.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description) "
                       "VALUES ('layer_styles', 'attributes', 'layer_styles', 'QGIS layer styles')")
            for style in styles:
                db.execute("DELETE FROM layer_styles WHERE f_table_name = ? AND styleName = ?",
                           (style.layer, style.name))
                db.execute("UPDATE layer_styles SET useAsDefault = 0 WHERE f_table_name = ?", (style.layer,))
                db.execute(
                    "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                    "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, owner, ui) "
                    "VALUES ('', '', ?, ?, ?, ?, '', 1, ?, '', '')",
                    (style.layer, geometry_columns[style.layer], style.name, style.qml(), style.description),
                )
    except sqlite3.DatabaseError as exc:
        raise MapInputError(f"{str(gpkg)!r} is not a GeoPackage whose styles can be written ({exc}); "
                            "write it with `fieldtruth map RUN --export gpkg`") from exc
    log.info("stored %d QGIS layer style(s) in %s", len(styles), gpkg)
