"""pystac-client's IO, guarded: every request and redirect through the network guard, no local files.

A STAC API's answers are outside input: their links (the next page, say) may point at any URL or at a
local path, which pystac-client would read. Here every request goes through
:func:`fieldtruth.ingest._http.guarded_session`, and a link that is not an http(s) URL is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pystac import Link
from pystac_client.stac_api_io import StacApiIO

from fieldtruth.ingest._http import guarded_session
from fieldtruth.ingest.errors import RefusedInputError
from fieldtruth.ingest.guard import is_url


class GuardedStacApiIO(StacApiIO):
    """:class:`StacApiIO` whose session is guarded and which never reads a local file."""

    def __init__(self, allow_hosts: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(max_retries=None, **kwargs)
        self.session = guarded_session(allow_hosts)

    def read_text(self, source: Any, *args: Any, **kwargs: Any) -> str:
        """Read a URL (through the guarded session); refuse anything else."""
        href = source.href if isinstance(source, Link) else str(source)
        if not is_url(href):
            raise RefusedInputError(f"STAC API link {href!r} is not an http(s) URL; refusing to read it")
        return super().read_text(source, *args, **kwargs)
