"""The browser the map tests and benchmarks drive: Debian's chromium, headless, no network of its own."""

from __future__ import annotations

from pathlib import Path

#: Debian's chromium (``apt-get install chromium``); never a downloaded browser.
CHROMIUM = Path("/usr/bin/chromium")
#: Its flags: headless, and nothing that reaches out to the network by itself.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
