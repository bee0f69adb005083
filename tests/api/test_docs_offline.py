"""The API's ``/docs`` works on a network without internet: Debian's headless Chromium (driven by
Selenium through Debian's chromedriver, nothing downloaded) with every host but 127.0.0.1 closed,
renders Swagger UI with every operation of the API, and every resource the page asked for came
from the API's own origin.

The network is closed by two independent means, both on the browser's command line:
``--host-resolver-rules`` makes every host name and address but 127.0.0.1 resolve to nothing, and
every request that is not to 127.0.0.1 goes to a proxy on a port where nothing listens
(``--proxy-bypass-list=<-loopback>;127.0.0.1``: loopback is not exempt, except 127.0.0.1). The test
shows they can fail it: a script served on 127.0.0.2 (reachable, as an open browser shows) does not
load, and FastAPI's own docs page, whose Swagger UI comes from a CDN, does not render.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from api.app import create_app
from api.settings import ApiSettings
from devtools.devnet import free_port
from ledger.compiler import PROJECT_ROOT
from serving import ServerThread

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOTS = Path(os.environ.get("GOVSHARE_SCREENSHOTS", PROJECT_ROOT / "test-output" / "screenshots"))
#: The flags of tests/api/test_dashboard.py: Debian's Chromium, no calls of its own to the outside.
BASE_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
              "--disable-extensions", "--window-size=1280,1000")


def closed_network_flags(dead_port: int) -> tuple[str, ...]:
    """Every host but 127.0.0.1 unreachable: no name or address resolves, and the rest goes to a dead proxy."""
    return ("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--proxy-server=http://127.0.0.1:{dead_port}", "--proxy-bypass-list=<-loopback>;127.0.0.1")


def _chromium(*flags: str) -> WebDriver:
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager never downloads a browser or a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*BASE_FLAGS, *flags):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request the page made, failed ones too
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture(scope="module")
def closed() -> Iterator[WebDriver]:
    """A headless Chromium that can reach 127.0.0.1 and nothing else."""
    dead = free_port()
    with socket.socket() as probe:  # the proxy's port: nothing answers there
        assert probe.connect_ex(("127.0.0.1", dead)) != 0
    driver = _chromium(*closed_network_flags(dead))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def docs_api() -> Iterator[str]:
    """The real API app (no chain needed for its docs: the node's port is closed) over real HTTP."""
    settings = ApiSettings(rpc_url=f"http://127.0.0.1:{free_port()}")
    server = ServerThread(create_app(settings, signers=[]), free_port()).start()
    try:
        yield server.url
    finally:
        server.stop()


def requested_urls(driver: WebDriver) -> list[str]:
    """The URLs of every request the browser sent since the last call (from its performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def resource_urls(driver: WebDriver) -> list[str]:
    """The resources the page loaded, as its Performance API lists them."""
    return driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class _ScriptHost(BaseHTTPRequestHandler):
    """Serves a page (at /page) that loads /probe.js from ``other``; /probe.js sets ``window.probed``."""

    other = ""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/page":
            body, kind = f'<!doctype html><script src="http://{self.other}/probe.js"></script>'.encode(), "text/html"
        else:
            body, kind = b"window.probed = true;", "text/javascript"
        self.send_response(200)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_the_closed_network_really_blocks_other_hosts(closed: WebDriver):
    """127.0.0.2 serves a script an open browser loads; with the flags, the same page gets nothing."""
    page_port, other_port = free_port(), free_port()
    handler = type("Handler", (_ScriptHost,), {"other": f"127.0.0.2:{other_port}"})
    servers = [ThreadingHTTPServer(("127.0.0.1", page_port), handler), ThreadingHTTPServer(("127.0.0.2", other_port), handler)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    page = f"http://127.0.0.1:{page_port}/page"
    try:
        assert httpx.get(f"http://127.0.0.2:{other_port}/probe.js", trust_env=False).status_code == 200
        open_browser = _chromium()
        try:
            open_browser.get(page)
            assert open_browser.execute_script("return window.probed === true"), "an open browser loads it"
        finally:
            open_browser.quit()
        requested_urls(closed)
        closed.get(page)
        assert closed.execute_script("return window.probed === undefined"), "the closed browser reached 127.0.0.2"
        assert f"http://127.0.0.2:{other_port}/probe.js" in requested_urls(closed)  # asked for, and refused
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_fastapi_default_docs_from_a_cdn_do_not_render_offline(closed: WebDriver):
    """FastAPI's own /docs (Swagger UI from cdn.jsdelivr.net): the closed browser shows an empty page,
    so the check below, that the API's docs render, can fail."""
    plain = FastAPI(title="docs from a CDN")

    @plain.get("/v1/things")
    def things() -> list[str]:
        return []

    server = ServerThread(plain, free_port()).start()
    try:
        assert "cdn.jsdelivr.net" in httpx.get(f"{server.url}/docs", trust_env=False).text
        requested_urls(closed)
        closed.get(f"{server.url}/docs")
        WebDriverWait(closed, 5).until(lambda d: d.execute_script("return document.readyState") == "complete")
        assert closed.execute_script("return typeof SwaggerUIBundle") == "undefined"
        assert closed.execute_script("return document.querySelectorAll('.opblock').length") == 0
        assert any(urlsplit(url).hostname == "cdn.jsdelivr.net" for url in requested_urls(closed))
    finally:
        server.stop()


def test_the_api_docs_render_offline_from_the_apis_own_origin(closed: WebDriver, docs_api: str):
    spec = httpx.get(f"{docs_api}/openapi.json", trust_env=False).json()
    operations = {(method.upper(), path) for path, item in spec["paths"].items() for method in item
                  if method in {"get", "post", "put", "patch", "delete"}}
    assert ("GET", "/v1/grants") in operations and ("POST", "/v1/queries") in operations

    requested_urls(closed)  # forget what earlier tests asked for
    closed.get(f"{docs_api}/docs")
    WebDriverWait(closed, 30).until(
        lambda d: d.execute_script("return document.querySelectorAll('.opblock').length") >= len(operations))
    rendered = closed.execute_script("""
        return Array.from(document.querySelectorAll('.opblock')).map(block => [
            block.querySelector('.opblock-summary-method').textContent.trim(),
            block.querySelector('.opblock-summary-path').dataset.path]);""")
    assert {(method, path) for method, path in rendered} == operations
    assert closed.execute_script("return document.querySelector('.swagger-ui .info .title').textContent").startswith("govshare API")

    own = origin(docs_api)
    loaded = resource_urls(closed)
    assert {f"{own}/docs/assets/swagger-ui-bundle.js", f"{own}/docs/assets/swagger-ui.css", f"{own}/openapi.json"} <= set(loaded)
    assert all(origin(url) == own for url in loaded), loaded
    asked = requested_urls(closed)  # failed requests too: nothing was even attempted elsewhere
    assert asked and all(origin(url) == own or url.startswith(("data:", "blob:")) for url in asked), asked
    _screenshot(closed, "docs-offline")


def _screenshot(driver: WebDriver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    (SCREENSHOTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))
