"""Attacks on the network side of the input guard: nothing reaches a host the guard did not allow.

Every test starts loopback servers that count the requests they receive; where the guard refuses, the
count must be zero. 127.0.0.2 plays the host an attacker wants reached (loopback, never allowed here).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import rasterio

from fieldtruth.ingest import netguard
from fieldtruth.ingest._socks import Relay, Route
from fieldtruth.ingest.aoi import read_aoi
from fieldtruth.ingest.errors import IngestError, RasterRefusedError, RefusedInputError, StacError
from fieldtruth.ingest.rasters import open_raster
from fieldtruth.ingest.sectors import read_sectors
from fieldtruth.ingest.sources import open_imagery
from fieldtruth.ingest.stac import scene_from_item
from fieldtruth.tests.data.hostile import geojson_with_crs_link, ogr_vrt
from fieldtruth.tests.data.rangeserver import serve
from fieldtruth.tests.data.rasters import scene_folder
from fieldtruth.tests.data.sectors import sites_frame, write_declaration
from fieldtruth.tests.data.stac import item_for_folder

TARGET = "127.0.0.2"  # the host the attacker wants reached


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    return scene_folder(tmp_path / "scene", size=64, seed=3)


@pytest.fixture()
def no_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """GDAL retries a refused connection like a dropped one (4 times, with back-off): not here."""
    from fieldtruth.ingest import remote

    monkeypatch.setitem(remote.GDAL_HTTP_OPTIONS, "GDAL_HTTP_MAX_RETRY", 0)


@pytest.mark.parametrize("prefix", ["/vsicurl/", "/vsicurl_streaming/", "/VSICURL/", "/vsicurl?url="])
@pytest.mark.parametrize("allow", [(), ("127.0.0.1",)])
def test_a_stac_href_with_a_gdal_network_prefix_never_reaches_the_host(folder: Path, prefix: str,
                                                                      allow: tuple[str, ...]) -> None:
    with serve(folder) as (base, log):
        item = item_for_folder(folder, "vsi", href_base=f"{prefix}{base}")
        with pytest.raises(RefusedInputError, match="not a plain local path"):
            scene_from_item(item, allow_hosts=allow, allow_dirs=[folder])
    assert log.requests == []


@pytest.mark.parametrize("href", [
    "/vsizip//tmp/x.zip/B02.tif", "/vsigzip//tmp/x.tif.gz", "/vsimem/x.tif", "/vsis3/bucket/x.tif",
    "/vsistdin/", "/vsisubfile/0_100,/etc/hostname", "/vsiaz/c/x.tif", "GTIFF_DIR:1:/tmp/x.tif",
    "vrt:///tmp/x.vrt?bands=1", "HDF5:/tmp/x.h5://b.tif", "file:///etc/hostname", "ftp://example.org/x.tif",
])
def test_every_other_gdal_syntax_is_refused_before_gdal(href: str, folder: Path) -> None:
    with pytest.raises((RefusedInputError, IngestError)):
        open_raster(href)
    item = item_for_folder(folder, "syntax")
    item.assets["B02"].href = href
    with pytest.raises(RefusedInputError):
        scene_from_item(item, allow_dirs=[folder])


def _redirected(folder: Path, target_base: str):
    """A server on 127.0.0.1 (allowed) whose /r/ paths redirect to ``target_base``."""
    return serve(folder, mode="redirect", redirect_to=target_base)


@pytest.mark.usefixtures("no_retries")
def test_a_redirect_from_an_allowed_host_to_another_is_not_followed_by_gdal(folder: Path, caplog) -> None:
    with serve(folder, host=TARGET) as (target, target_log), _redirected(folder, target) as (base, log):
        item = item_for_folder(folder, "redirected", href_base=f"{base}/r")
        with caplog.at_level(logging.WARNING), pytest.raises(IngestError):
            scene_from_item(item, allow_hosts=[base.removeprefix("http://")])
    assert log.requests, "the allowed server was asked"
    assert target_log.requests == [], "the redirect target was never reached"
    assert any(TARGET in r.message and "refused" in r.message for r in caplog.records)


@pytest.mark.usefixtures("no_retries")
@pytest.mark.parametrize("target", ["http://localhost:{port}", "http://169.254.169.254", "http://[::1]:{port}",
                                    "http://2130706433:{port}"])
def test_redirects_to_loopback_names_metadata_and_odd_spellings_are_refused(folder: Path, target: str,
                                                                             caplog) -> None:
    with serve(folder) as (other, other_log):
        port = other.rsplit(":", 1)[1]
        with _redirected(folder, target.format(port=port)) as (base, _):
            item = item_for_folder(folder, "redirected", href_base=f"{base}/r")
            with caplog.at_level(logging.WARNING), pytest.raises(IngestError):
                scene_from_item(item, allow_hosts=[base.removeprefix("http://")])
    assert other_log.requests == []
    assert any("refused" in r.message for r in caplog.records)


def test_the_relay_lets_only_tls_through_to_hosts_not_allowed(folder: Path) -> None:
    """A public host (here a loopback server the policy calls public) read over plain http: refused."""
    relay = Relay(lambda host, port, user: Route(("127.0.0.1",), tls_only=True))
    with serve(folder) as (base, log):
        with rasterio.Env(GDAL_HTTP_PROXY=f"socks5h://127.0.0.1:{relay.port}", GDAL_HTTP_PROXYUSERPWD="x:y",
                          GDAL_HTTP_MAX_RETRY=0), pytest.raises(rasterio.errors.RasterioIOError):
            rasterio.open(f"/vsicurl/{base}/B02.tif").close()
    relay.server.close()
    assert log.requests == []


def test_no_proxy_in_the_environment_does_not_open_a_way_around_the_guard(folder: Path) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from fieldtruth.ingest import remote\n"
        "from fieldtruth.ingest.stac import scene_from_item\n"
        "remote.GDAL_HTTP_OPTIONS['GDAL_HTTP_MAX_RETRY'] = 0\n"
        "from fieldtruth.tests.data.rangeserver import serve\n"
        "from fieldtruth.tests.data.stac import item_for_folder\n"
        f"folder = Path({str(folder)!r})\n"
        f"with serve(folder, host={TARGET!r}) as (target, tlog), "
        "serve(folder, mode='redirect', redirect_to=target) as (base, _):\n"
        "    try:\n"
        "        scene_from_item(item_for_folder(folder, 'r', href_base=base + '/r'),"
        " allow_hosts=[base.removeprefix('http://')])\n"
        "    except Exception:\n"
        "        pass\n"
        "print(len(tlog.requests))\n"
    )
    env = {**os.environ, "NO_PROXY": f"{TARGET},localhost,127.0.0.1", "no_proxy": "*"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "0"


def test_a_stac_api_next_page_link_to_another_host_is_never_fetched(folder: Path) -> None:
    from fieldtruth.tests.data.stacapi import stac_api

    with serve(folder, host=TARGET) as (target, target_log):
        with serve(folder) as (files, _):
            item = item_for_folder(folder, "page1", href_base=files)
            item.collection_id = "c"
            with stac_api([item], next_href=f"{target}/search?page=2") as url:
                with pytest.raises(StacError, match="not https|non-public"):
                    open_imagery(url, collection="c", allow_hosts=["127.0.0.1"])
    assert target_log.requests == []


@pytest.mark.parametrize("next_href", ["/etc/hostname", "file:///etc/hostname"])
def test_a_stac_api_link_to_a_local_file_is_never_read(folder: Path, next_href: str) -> None:
    from fieldtruth.tests.data.stacapi import stac_api

    with serve(folder) as (files, _):
        item = item_for_folder(folder, "page1", href_base=files)
        item.collection_id = "c"
        with stac_api([item], next_href=next_href) as url, pytest.raises(StacError, match="not an http"):
            open_imagery(url, collection="c", allow_hosts=["127.0.0.1"])


def test_a_stac_api_redirect_to_another_host_is_never_followed(folder: Path) -> None:
    from fieldtruth.tests.data.stacapi import stac_api

    with serve(folder, host=TARGET) as (target, target_log):
        with stac_api([], search_redirect=f"{target}/search") as url, pytest.raises(StacError):
            open_imagery(url, collection="c", allow_hosts=["127.0.0.1"])
    assert target_log.requests == []


def test_a_stac_api_item_naming_a_local_file_is_refused(folder: Path) -> None:
    from fieldtruth.tests.data.stacapi import stac_api

    item = item_for_folder(folder, "local")  # absolute local paths, from a remote API
    item.collection_id = "c"
    with stac_api([item]) as url, pytest.raises(RasterRefusedError, match="local paths are not allowed"):
        open_imagery(url, collection="c", allow_hosts=["127.0.0.1"])


def _csv_server_root(tmp_path: Path) -> Path:
    root = tmp_path / "served"
    root.mkdir()
    sites_frame(5).to_csv(root / "sites.csv", index=False)
    return root


def test_an_ogr_vrt_named_geojson_is_refused_as_a_sector_dataset(tmp_path: Path) -> None:
    with serve(_csv_server_root(tmp_path)) as (base, log):
        ogr_vrt(tmp_path / "sites.geojson", f"/vsicurl/{base}/sites.csv")
        decl = write_declaration(tmp_path / "d.yaml", ["sites.geojson"], geometry={"crs": "EPSG:4326"})
        with pytest.raises(RefusedInputError, match="not geojson as declared"):
            read_sectors(decl)
        with pytest.raises(RefusedInputError):
            read_aoi(tmp_path / "sites.geojson")
    assert log.requests == []


def test_geojson_whose_crs_is_a_link_never_fetches_it(tmp_path: Path) -> None:
    with serve(tmp_path) as (base, log):
        path = geojson_with_crs_link(tmp_path / "sites.geojson", f"{base}/crs.wkt")
        decl = write_declaration(tmp_path / "d.yaml", ["sites.geojson"], geometry={"crs": "EPSG:4326"},
                                 on_bad_rows="report")
        try:
            read_sectors(decl)
        except IngestError:
            pass  # refusing the file is as good as reading it without the link
        try:
            read_aoi(path)
        except IngestError:
            pass
    assert log.requests == []


def test_the_policy_judges_every_address_a_name_resolves_to(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netguard, "resolve", lambda host, port: ("93.184.216.34", "10.0.0.8"))
    with pytest.raises(RefusedInputError, match="10.0.0.8"):
        netguard.public_addresses("mixed.example", 443)
    for address in ("::ffff:127.0.0.1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::", "0.0.0.0", "224.0.0.1",
                    "fe80::1"):
        assert not netguard.is_public(address), address
    assert netguard.is_public("93.184.216.34") and netguard.is_public("2606:2800:220:1::1")
