"""Vendored front-end assets inlined into offline maps: Leaflet 1.9.4 (BSD-2-Clause, see LICENSE).

Files are copied unmodified from the npm package ``leaflet@1.9.4`` (``dist/leaflet.js``,
``dist/leaflet.css``, ``dist/images/*.png`` referenced by the CSS, and ``LICENSE``).
"""
