"""The report in a real browser: headless Chromium opens every page from disk, finds no console
errors, loads every figure, runs none of the script payloads typed into the catalog, and saves a
screenshot. Skipped, with the reason shown, only where Chromium is not installed (`make browser`)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
    pytest.skip(f"headless Chromium is not installed ({CHROMIUM}, {CHROMEDRIVER} missing): run `make browser` "
                "(apt-get install -y chromium chromium-driver) to run the browser test", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

from tests.helpers import ok  # noqa: E402
from tests.report.test_report import build_catalog, tags_of  # noqa: E402

pytestmark = pytest.mark.slow  # real runs, a report, and a Chromium process

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--window-size=1280,1700")


@pytest.fixture(scope="module")
def browser():
    profile = tempfile.mkdtemp(prefix="phenolab-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def visit(driver, page: Path) -> dict:
    """Open a page from disk; what a person would notice: console errors, broken images, scripts run."""
    driver.get_log("browser")  # drop anything left from the previous page
    driver.get(page.resolve().as_uri())
    images = driver.execute_script("return Array.from(document.images).map("
                                   "i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0}))")
    return {
        "errors": [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")],
        "images": images,
        "pwned": driver.execute_script("return window.__pwned === undefined ? null : window.__pwned"),
        "title": driver.title,
    }


def test_the_harness_sees_scripts_errors_and_broken_images(browser, tmp_path):
    """The checks below can fail: a page that runs a script, logs an error and has a broken image."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!doctype html><title>t</title><script>window.__pwned = 1; console.error("boom")</script>'
                   '<img src="missing.png">')
    seen = visit(browser, bad)
    assert seen["pwned"] == 1 and seen["errors"] and seen["images"] == [{"src": "missing.png", "ok": False}]


@pytest.mark.parametrize("payload", [False, True], ids=["plain", "script-payloads"])
def test_report_pages_in_chromium(browser, tmp_path, payload):
    cat = build_catalog(tmp_path, payload=payload)
    out = tmp_path / "site"
    ok("report", "--catalog", cat, "--out", out)
    pages = sorted(out.glob("*.html"))
    assert len(pages) >= 4
    n_images = 0
    for page in pages:
        seen = visit(browser, page)
        assert seen["errors"] == [], (page.name, seen["errors"])
        assert seen["pwned"] is None and seen["title"] != "PWNED", page.name
        expected = [attrs["src"] for tag, attrs in tags_of(page.read_text()) if tag == "img"]
        assert [i["src"] for i in seen["images"]] == expected, page.name
        assert all(i["ok"] for i in seen["images"]), (page.name, seen["images"])
        n_images += len(expected)
    assert n_images >= 2
    study = next(p for p in pages if p.name.startswith("phenomenon-grokking-gromov2023"))
    visit(browser, study)
    shot = tmp_path / f"report-{'payload' if payload else 'plain'}.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 20_000
