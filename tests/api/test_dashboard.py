"""The dashboard in a real headless Chromium (Debian's ``chromium`` driven by Selenium through Debian's
``chromedriver``; nothing downloaded): the real API service over real HTTP, on a real trail anchored
by real oracles (``tests.api.audit_trail``, built once for this module). Every page loads with its
content, the chart draws bars whose rendered heights follow the counts, the records search filters
to exactly the expected rows, and a screenshot of each page is saved under ``test-output/screenshots``.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from api.dashboard import COOKIE
from ledger.compiler import PROJECT_ROOT
from tests.api.audit_trail import AuditWorld, audit_world
from tests.api.conftest import RunningApi

SCREENSHOTS = Path(os.environ.get("GOVSHARE_SCREENSHOTS", PROJECT_ROOT / "test-output" / "screenshots"))
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def world(ganache, template, compilation, company_api, resident_api, tmp_path_factory) -> Iterator[AuditWorld]:  # noqa: F811
    with audit_world(ganache, template, compilation, company_api, resident_api,
                     tmp_path_factory.mktemp("dashboard")) as built:
        yield built


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """One headless Chromium for the module. Debian's binaries, so Selenium Manager never downloads
    one; the background-networking flags keep Chromium from calling out (this machine has no internet,
    and the dashboard must not need it either)."""
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", "--disable-extensions", "--window-size=1280,1000", "--lang=zh-CN"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def service(world: AuditWorld, browser: WebDriver, request: pytest.FixtureRequest) -> RunningApi:
    """A service of this test's own (its own index, sessions and verification), synced; the browser
    starts signed out (cookies are per host, not per port)."""
    api = world.start_api(request.node.name.replace("[", "-").strip("]"))
    assert api.post(world.members.audit.auditor, "/v1/audit/sync").status_code == 200
    browser.delete_all_cookies()
    return api


#: For each bar of the chart: its series, its fill, whether it is the element shown at its centre, and
#: the pixel at its centre once the chart's SVG is painted onto a canvas.
PAINTED_BARS = """
const done = arguments[arguments.length - 1];
const svg = document.querySelector('svg.chart');
const box = svg.getBoundingClientRect();
const image = new Image();
image.onload = () => {
  const canvas = document.createElement('canvas');
  canvas.width = Math.round(box.width); canvas.height = Math.round(box.height);
  const context = canvas.getContext('2d');
  context.drawImage(image, 0, 0, canvas.width, canvas.height);
  done(Array.from(svg.querySelectorAll('rect.bar')).map(bar => {
    const r = bar.getBoundingClientRect();
    const x = r.left + r.width / 2, y = r.top + r.height / 2;
    const pixel = context.getImageData(Math.round(x - box.left), Math.round(y - box.top), 1, 1).data;
    return [bar.dataset.series, bar.getAttribute('fill'), document.elementFromPoint(x, y) === bar, Array.from(pixel)];
  }));
};
image.onerror = () => done('the chart could not be painted');
image.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(new XMLSerializer().serializeToString(svg));
"""


def sign_in(browser: WebDriver, api: RunningApi, account: str, path: str = "/dashboard") -> None:
    browser.get(api.url + path)
    assert "/dashboard/login" in browser.current_url
    browser.find_element(By.ID, "token").send_keys(api.tokens[account])
    follow(browser, browser.find_element(By.ID, "sign-in"))


def shoot(browser: WebDriver, name: str) -> Path:
    """Save a screenshot of the whole page (beyond the window, through the DevTools protocol)."""
    size = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = browser.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    path = SCREENSHOTS / f"dashboard-{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.stat().st_size > 10_000, f"{path} looks blank"
    print(f"screenshot: {path}")
    return path


#: The current document's identity and state: ``performance.timeOrigin`` is new for every document.
DOCUMENT_STATE = "return [performance.timeOrigin, document.readyState]"


def follow(browser: WebDriver, element: WebElement) -> None:
    """Click a link or a submit button and wait until the next page has replaced this one and has
    loaded. While the old document is being torn down, chromedriver can answer a probe of it with
    any of several errors (a stale element, a detached node: "Node with given id does not belong to
    the document", a script run in a context that just went away), so the wait asks the browser for
    the current document's time origin and ignores WebDriver errors until a new document answers."""
    before = browser.execute_script(DOCUMENT_STATE)[0]
    element.click()

    def next_page_loaded(b: WebDriver) -> bool:
        origin, state = b.execute_script(DOCUMENT_STATE)
        return origin != before and state == "complete"

    WebDriverWait(browser, 30, ignored_exceptions=(WebDriverException,)).until(
        next_page_loaded, message="the click did not lead to a new page within 30 s")


def heading(browser: WebDriver) -> str:
    return browser.find_element(By.TAG_NAME, "h1").text


def table_rows(browser: WebDriver, table_id: str) -> list:
    return browser.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")


def test_sign_in_is_required_and_a_bad_token_is_refused(world, browser, service):
    auditor = world.members.audit.auditor.address
    browser.get(service.url + "/dashboard/records?outcome=denied")
    assert "/dashboard/login" in browser.current_url and "登录" in heading(browser)
    browser.find_element(By.ID, "token").send_keys("not-a-token")
    follow(browser, browser.find_element(By.ID, "sign-in"))
    assert "令牌无效" in browser.find_element(By.ID, "login-error").text
    shoot(browser, "login")
    browser.get(service.url + "/dashboard/records?outcome=denied")
    browser.find_element(By.ID, "token").send_keys(service.tokens[auditor])
    follow(browser, browser.find_element(By.ID, "sign-in"))
    assert browser.current_url == service.url + "/dashboard/records?outcome=denied"  # back where it was going
    assert len(table_rows(browser, "records-table")) == 2
    cookie = browser.get_cookie(COOKIE)
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict" and cookie["path"] == "/dashboard"
    follow(browser, browser.find_element(By.CSS_SELECTOR, "header form button"))  # sign out
    browser.get(service.url + "/dashboard")
    assert "/dashboard/login" in browser.current_url


def test_every_page_loads_with_its_content(world, browser, service):
    trail, members = world.trail, world.members
    sign_in(browser, service, members.audit.auditor.address)

    assert "概览" in heading(browser) and "Overview" in heading(browser)
    assert browser.find_element(By.CSS_SELECTOR, "#card-records .figure").text == "7"
    assert browser.find_element(By.CSS_SELECTOR, "#card-denied .figure").text == "2"
    assert browser.find_element(By.CSS_SELECTOR, "#card-grants .figure").text == "1"  # the company grant was revoked
    assert "未核验" in browser.find_element(By.ID, "verification-status").text
    denials = table_rows(browser, "recent-denials")
    assert [r.find_elements(By.TAG_NAME, "td")[4].text for r in denials] == ["REVOKED", "FIELDS_NOT_GRANTED"]
    shoot(browser, "overview")

    follow(browser, browser.find_element(By.LINK_TEXT, "数据集 Datasets"))
    assert "数据集" in heading(browser)
    rows = {r.get_attribute("data-dataset"): r.text for r in table_rows(browser, "datasets-table")}
    assert set(rows) == {str(trail.published.companies), str(trail.published.residents)}
    assert "企业登记信息" in rows[str(trail.published.companies)] and "SAMR" in rows[str(trail.published.companies)]
    assert "内部 Internal" in rows[str(trail.published.companies)] and "v1 · 3000" in rows[str(trail.published.companies)]
    assert "敏感 Sensitive" in rows[str(trail.published.residents)] and "PSB" in rows[str(trail.published.residents)]
    shoot(browser, "datasets")

    follow(browser, browser.find_element(By.LINK_TEXT, "授权 Grants"))
    assert "授权" in heading(browser)
    grants = {r.get_attribute("data-grant"): r for r in table_rows(browser, "grants-table")}
    assert grants[str(trail.published.tax_grant)].get_attribute("data-state") == "revoked"
    residents = grants[str(trail.residents_grant)]
    assert residents.get_attribute("data-state") == "active"
    assert residents.find_element(By.CSS_SELECTOR, "td.quota").text.strip() == "2 / 10"
    shoot(browser, "grants")

    follow(browser, browser.find_element(By.LINK_TEXT, "审计记录 Records"))
    assert "审计记录" in heading(browser)
    assert browser.find_element(By.ID, "total").text == "7"
    assert len(table_rows(browser, "records-table")) == 7
    shoot(browser, "records")

    rid = trail.denied_companies[-1]
    follow(browser, browser.find_element(By.CSS_SELECTOR, f'tr[data-record="{rid}"] a'))
    assert browser.find_element(By.ID, "record-id").text == rid
    (on_chain,) = [r for r in world.consortium.audit_log.records() if hex(r.record_id) == rid]
    assert browser.find_element(By.ID, "tx-hash").text == on_chain.tx_hash
    assert browser.find_element(By.ID, "block-number").text.startswith(f"{on_chain.block_number} ·")
    assert "已拒绝 Denied" in browser.find_element(By.ID, "outcome").text
    assert "已撤销 Revoked" in browser.find_element(By.ID, "grant").text
    assert "尚未核验" in browser.find_element(By.ID, "verification").text
    shoot(browser, "record")


def test_chart_draws_bars_following_the_counts(world, browser, service):
    sign_in(browser, service, world.members.audit.auditor.address)
    bars = browser.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar")
    assert [(b.get_attribute("data-series"), b.get_attribute("data-count")) for b in bars] == [("TAX", "7")]
    assert bars[0].rect["height"] > 50, bars[0].rect  # drawn, with a real height on screen
    follow(browser, browser.find_element(By.LINK_TEXT, "提供部门 providing department"))
    bars = browser.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar")
    heights = {b.get_attribute("data-series"): b.rect["height"] for b in bars}
    assert {b.get_attribute("data-series"): b.get_attribute("data-count") for b in bars} == {"PSB": "2", "SAMR": "5"}
    assert heights["PSB"] > 0 and abs(heights["SAMR"] / heights["PSB"] - 5 / 2) < 0.05, heights
    # each bar is what the page shows at its centre, and painting the chart gives the bar's colour there
    painted = browser.execute_async_script(PAINTED_BARS)
    assert len(painted) == 2
    for series, fill, on_top, rgba in painted:
        assert on_top, f"{series}'s bar is not what the page shows at its centre"
        assert rgba == [int(fill[1:3], 16), int(fill[3:5], 16), int(fill[5:7], 16), 255], (series, fill, rgba)
    shoot(browser, "overview-by-provider")


def test_search_filters_to_exactly_the_matching_records(world, browser, service):
    trail = world.trail
    sign_in(browser, service, world.members.audit.auditor.address, "/dashboard/records")
    assert len(table_rows(browser, "records-table")) == 7
    Select(browser.find_element(By.ID, "dataset")).select_by_value(str(trail.published.companies))
    Select(browser.find_element(By.ID, "outcome")).select_by_value("denied")
    follow(browser, browser.find_element(By.ID, "search"))
    rows = table_rows(browser, "records-table")
    assert [r.get_attribute("data-record") for r in rows] == list(reversed(trail.denied_companies))
    assert {r.get_attribute("data-outcome") for r in rows} == {"denied"}
    assert browser.find_element(By.ID, "total").text == "2"
    shoot(browser, "records-search")

    Select(browser.find_element(By.ID, "dataset")).select_by_value(str(trail.published.residents))
    Select(browser.find_element(By.ID, "outcome")).select_by_value("served")
    follow(browser, browser.find_element(By.ID, "search"))
    assert sorted(r.get_attribute("data-record") for r in table_rows(browser, "records-table")) == sorted(trail.served_residents)

    Select(browser.find_element(By.ID, "outcome")).select_by_value("denied")
    follow(browser, browser.find_element(By.ID, "search"))
    assert table_rows(browser, "records-table") == [] and browser.find_element(By.ID, "no-records")

    browser.get(service.url + "/dashboard/records?grant=zz")
    assert "grant must be a number" in browser.find_element(By.ID, "search-error").text


def test_an_operator_sees_only_its_department(world, browser, service):
    trail, members = world.trail, world.members
    sign_in(browser, service, members.psb.operator.address, "/dashboard/records")
    assert Select(browser.find_element(By.ID, "provider_dept")).first_selected_option.get_attribute("value") == "PSB"
    assert sorted(r.get_attribute("data-record") for r in table_rows(browser, "records-table")) == sorted(trail.served_residents)
    assert "PSB" in browser.find_element(By.CSS_SELECTOR, "header .who").text
    browser.get(service.url + f"/dashboard/records/{trail.served_companies[0]}")
    assert "无权访问" in heading(browser)
    browser.get(service.url + "/dashboard/grants")
    assert [r.get_attribute("data-grant") for r in table_rows(browser, "grants-table")] == [str(trail.residents_grant)]
    assert browser.find_elements(By.ID, "verify-now") == []  # verification is the auditors'
    browser.get(service.url + "/dashboard/records?provider_dept=SAMR&requester_dept=SAMR")
    assert "PSB" in browser.find_element(By.ID, "search-error").text and table_rows(browser, "records-table") == []


def test_refused_accounts_cannot_sign_in(world, browser, service):
    sign_in(browser, service, world.members.samr.oracle.address)  # neither an auditor nor an operator
    assert "/dashboard/login" in browser.current_url
    assert "无权访问" in browser.find_element(By.ID, "login-error").text


def test_sync_and_verify_from_the_overview(world, browser, service):
    sign_in(browser, service, world.members.audit.auditor.address)
    follow(browser, browser.find_element(By.ID, "sync-now"))
    assert "0 条" in browser.find_element(By.ID, "flash").text
    follow(browser, browser.find_element(By.ID, "verify-now"))
    assert "核验通过" in browser.find_element(By.ID, "flash").text
    assert "通过" in browser.find_element(By.ID, "verification-status").text
    status = service.get(world.members.audit.auditor, "/v1/audit/status").json()
    assert browser.find_element(By.ID, "verified-block").text == str(status["synced_block"])
    shoot(browser, "overview-verified")
    browser.get(service.url + f"/dashboard/records/{world.trail.served_companies[0]}")
    assert "核验通过" in browser.find_element(By.ID, "verification").text
    browser.get(service.url + "/dashboard")
    follow(browser, browser.find_element(By.ID, "report-link"))
    assert "核验通过 · PASSED" in browser.find_element(By.ID, "verdict").text
    assert [r.get_attribute("data-verdict") for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-check]")][:4] == ["pass"] * 4
    shoot(browser, "verification-report")


def test_pages_run_no_script_and_call_no_other_host(world, service):
    """Checked on the wire: a strict CSP, no <script>, and every link, stylesheet and form on this host."""
    with httpx.Client(base_url=service.url, trust_env=False, follow_redirects=False) as client:
        login = client.post("/dashboard/login", data={"token": service.tokens[world.members.audit.auditor.address]})
        assert login.status_code == 303 and "httponly" in login.headers["set-cookie"].lower()
        for path in ("/dashboard", "/dashboard/datasets", "/dashboard/grants", "/dashboard/records",
                     f"/dashboard/records/{world.trail.served_companies[0]}"):
            page = client.get(path)
            assert page.status_code == 200, (path, page.text[:300])
            csp = page.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "script-src" not in csp
            assert "<script" not in page.text.lower()
            for url in re.findall(r'(?:href|src|action)="([^"]+)"', page.text):
                assert url.startswith(("/", "?", service.url)), (path, url)
        assert client.get("/dashboard/records?outcome=everything").status_code == 200  # shown as an error on the page
        assert "outcome must be one of" in client.get("/dashboard/records?outcome=everything").text
        assert client.get("/dashboard/records/0x" + "ab" * 20 + "0000000000000063").status_code == 404
        assert client.get("/dashboard/records/nope").status_code == 400
        assert client.post("/dashboard/sync", headers={"Origin": "http://evil.example"}).status_code == 403
