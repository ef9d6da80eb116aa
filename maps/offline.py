"""Make a Folium map one self-contained HTML file that opens offline and requests nothing.

Folium's default template loads Leaflet, jQuery, Bootstrap and Font Awesome from CDNs. Here the CDN
links are removed, the vendored Leaflet 1.9.4 (``maps/vendor``) is inlined (its CSS images as
``data:`` URIs), a Content-Security-Policy meta tag forbids every fetch, and inline scripts are
pinned by their SHA-256 so an injected script or event handler would not run even if escaping failed.
:func:`remote_references` is the guard, used before writing and in the tests.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import re
from functools import cache
from html.parser import HTMLParser
from importlib import resources
from typing import Any

import folium
from branca.element import Element, Figure

from fieldtruth.maps.errors import OfflineMapError

log = logging.getLogger(__name__)

CSP_PLACEHOLDER = "__FIELDTRUTH_CSP__"
CSP_BASE = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
_URL_ATTRS = frozenset(
    {
        "src",
        "href",
        "srcset",
        "action",
        "formaction",
        "poster",
        "data",
        "background",
        "xlink:href",
        "manifest",
        "ping",
        "cite",
        "longdesc",
    }
)
_REMOTE = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
_CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])([^'")\s]+)""", re.IGNORECASE)
_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)


class RawHTML(Element):
    """A branca element that renders its text verbatim (never through Jinja, so ``{{`` stays text)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def render(self, **kwargs: Any) -> str:
        """Return the text unchanged."""
        return self.text


@cache
def leaflet_assets() -> tuple[str, str]:
    """Return the vendored Leaflet ``(css, js)``, CSS image references replaced by ``data:`` URIs.

    Raises:
        OfflineMapError: If a vendored file is missing (a broken install).
    """
    vendor = resources.files("fieldtruth.maps.vendor")
    try:
        css = vendor.joinpath("leaflet.css").read_text(encoding="utf-8")
        js = vendor.joinpath("leaflet.js").read_text(encoding="utf-8")

        def inline(match: re.Match[str]) -> str:
            try:
                data = vendor.joinpath("images", match.group(1)).read_bytes()
            except OSError:  # a cosmetic icon only: never fall back to a remote or relative URL
                log.warning("vendored Leaflet image %s is missing; drawing without it", match.group(1))
                return "none"
            return f"url(data:image/png;base64,{base64.b64encode(data).decode('ascii')})"

        css = re.sub(r"url\(images/([A-Za-z0-9_.-]+\.png)\)", inline, css)
    except (FileNotFoundError, OSError) as exc:
        raise OfflineMapError(
            f"expected the vendored Leaflet files in fieldtruth/maps/vendor; reading them failed: {exc}. "
            "Reinstall fieldtruth (the package data includes them)."
        ) from exc
    if re.search(r"</(script|style)", js + css, re.IGNORECASE):
        raise OfflineMapError("expected vendored assets without closing tags; got a '</script' or '</style'.")
    return css, js


def offline_map(**map_kwargs: Any) -> folium.Map:
    """Create a :class:`folium.Map` with no CDN resources, inlined Leaflet and a CSP placeholder.

    Args:
        **map_kwargs: Passed to :class:`folium.Map`; ``tiles`` is forced to None (no tile server).

    Returns:
        The map, already added to its own :class:`branca.element.Figure`.
    """
    css, js = leaflet_assets()
    figure = Figure()
    figure.header.add_child(
        RawHTML(f'<meta http-equiv="Content-Security-Policy" content="{CSP_PLACEHOLDER}">'), name="csp"
    )
    figure.header.add_child(RawHTML(f"<style>{css}</style>"), name="leaflet_css")
    figure.header.add_child(RawHTML(f"<script>{js}</script>"), name="leaflet_js")
    fmap = folium.Map(tiles=None, **map_kwargs)
    fmap.default_js = []  # instance attributes shadow the class's CDN lists
    fmap.default_css = []
    figure.add_child(fmap)
    return fmap


def script_json(value: Any) -> str:
    """Encode ``value`` as JSON that is safe inside an inline ``<script>`` (no ``<``, ``>``, ``&``)."""
    text = json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def finalise_html(page: str, img_hosts: tuple[str, ...] = ()) -> str:
    """Fill the CSP with the hashes of the page's inline scripts and refuse anything remote.

    Args:
        page: The rendered page (:func:`render_page` or :func:`offline_map`'s figure).
        img_hosts: ``https://host`` origins images may load from (an explicitly asked-for online
            basemap); empty for a fully offline page.

    Returns:
        The page with its Content-Security-Policy filled in.

    Raises:
        OfflineMapError: If the page has an external script, a remote reference, or no CSP placeholder.
    """
    page = page.replace("\r\n", "\n").replace("\r", "\n")  # browsers normalise newlines before hashing
    if page.count(CSP_PLACEHOLDER) != 1:
        raise OfflineMapError(
            "expected exactly one CSP placeholder in the page; build it with offline_map()."
        )
    hashes = []
    for attrs, body in _SCRIPT.findall(page):
        if attrs.strip():
            raise OfflineMapError(f"expected only inline scripts without attributes; got <script{attrs}>.")
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
        hashes.append(f"'sha256-{digest}'")
    base = CSP_BASE
    for host in img_hosts:
        if not re.fullmatch(r"https://[a-z0-9.-]+", host):
            raise OfflineMapError(f"expected an image host like 'https://tile.example.org'; got {host!r}.")
        base = base.replace("img-src data:", f"img-src data: {host}", 1)
    csp = f"{base}; script-src {' '.join(sorted(set(hashes)))} 'unsafe-inline'"
    page = page.replace(CSP_PLACEHOLDER, html.escape(csp, quote=False))
    remote = [r for r in remote_references(page) if not any(r.startswith(h + "/") for h in img_hosts)]
    if remote:
        raise OfflineMapError(
            f"expected a map that loads nothing from the network; it references {remote[:5]!r}. "
            "Remove the element (or folium plugin) that adds them."
        )
    return page


class _RefCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refs: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        for name, value in attrs:
            if value is None:
                continue
            if name.lower() in _URL_ATTRS:
                self.refs.extend(v.strip().split(" ")[0] for v in value.split(","))
            elif name.lower() == "style":
                self.refs.extend(_CSS_URL.findall(value))
            elif name.lower() == "http-equiv" and value.lower() == "refresh":
                self.refs.append(dict(attrs).get("content") or "")

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.refs.extend(_CSS_URL.findall(data))


def remote_references(page: str) -> list[str]:
    """Return every URL the page's markup or CSS would fetch from a host (``scheme://``, ``//host``).

    Script bodies are not parsed; they are pinned by the CSP and checked by the browser test. Links
    inside licence comments or attribution text are not loads and are not reported.
    """
    collector = _RefCollector()
    collector.feed(page)
    collector.close()
    refresh = [r for r in collector.refs if "url=" in r.lower()]
    return [r for r in collector.refs if _REMOTE.match(r) and not r.lower().startswith("data:")] + refresh


SVG_PATTERNS = (
    '<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>'
    '<pattern id="ft-hatch-dark" width="10" height="10" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="10" height="10" fill="#6b6b6b" fill-opacity="0.45"/>'
    '<line x1="0" y1="0" x2="0" y2="10" stroke="#222" stroke-width="3" stroke-opacity="0.6"/></pattern>'
    '<pattern id="ft-hatch-light" width="10" height="10" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(-45)"><rect width="10" height="10" fill="#9a9a9a" fill-opacity="0.2"/>'
    '<line x1="0" y1="0" x2="0" y2="10" stroke="#444" stroke-width="1.5" stroke-opacity="0.5"/></pattern>'
    "</defs></svg>"
)


@cache
def page_assets() -> tuple[str, str]:
    """Return ``(css, js)``: Leaflet, leaflet.markercluster, fieldtruth's decision and page scripts, and
    style."""
    leaflet_css, leaflet_js = leaflet_assets()
    vendor = resources.files("fieldtruth.maps.vendor")
    try:
        parts = {
            n: vendor.joinpath(n).read_text(encoding="utf-8")
            for n in (
                "MarkerCluster.css",
                "leaflet.markercluster.js",
                "fieldtruth-map.css",
                "fieldtruth-decide.js",
                "fieldtruth-map.js",
            )
        }
    except OSError as exc:
        raise OfflineMapError(f"expected the vendored map scripts in fieldtruth/maps/vendor; {exc}.") from exc
    css = "\n".join([leaflet_css, parts["MarkerCluster.css"], parts["fieldtruth-map.css"]])
    js = [
        leaflet_js,
        parts["leaflet.markercluster.js"],
        parts["fieldtruth-decide.js"],
        parts["fieldtruth-map.js"],
    ]
    if re.search(r"</(script|style)", css + "".join(js), re.IGNORECASE):
        raise OfflineMapError("expected vendored assets without closing tags; got a '</script' or '</style'.")
    return css, "\x00".join(js)


def render_page(*, title: str, banner: str, note: str, warning: str | None, data: Any, sealed: bool) -> str:
    """Return the whole HTML page: a static shell, the data as one JSON script, the page script.

    Args:
        title, banner, note, warning: Plain text (escaped here for HTML).
        data: ``{"payload": ...}`` or ``{"sealed": ...}``; encoded by :func:`script_json`.
        sealed: Whether to show the passphrase form.
    """
    css, js = page_assets()
    leaflet_js, cluster_js, decide_js, app_js = js.split("\x00")
    warn = f'<span class="ft-warn">{html.escape(warning)}</span>' if warning else ""
    unlock = (
        '<form id="ft-unlock" class="ft-unlock" hidden autocomplete="off">'
        '<label for="ft-pass"><b>This restricted map is encrypted.</b> Type its passphrase to open it '
        "(it is decrypted in this browser only; nothing is sent anywhere).</label>"
        '<input id="ft-pass" type="password" autocomplete="off" required>'
        '<button type="submit">Open the map</button>'
        '<p id="ft-error" class="ft-error" role="alert"></p></form>'
        if sealed
        else ""
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP_PLACEHOLDER}">'
        f"<title>{html.escape(title)}</title><style>{css}</style></head><body>{SVG_PATTERNS}"
        f'<div class="ft-banner" role="alert">{html.escape(banner)}'
        f"<small>{html.escape(note)}</small>{warn}</div>"
        f'{unlock}<div id="ft-map" hidden></div><details id="ft-legend" class="ft-legend" hidden></details>'
        f"<script>{leaflet_js}</script><script>{cluster_js}</script><script>{decide_js}</script>"
        f"<script>window.FT_DATA = {script_json(data)};</script><script>{app_js}</script></body></html>\n"
    )
