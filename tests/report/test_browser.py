"""The report in a real browser: headless Chromium opens every page from disk, finds no console
errors, loads every figure, runs none of the script payloads typed into the catalog, and saves a
screenshot; and reads the index, a study page and the hypotheses as a reader does, at 1280 px and
at a phone's 390 px: one card per phenomenon with its thumbnail, nothing wider than the screen, the
claim's comparison on screen, the unanswered checklist folded away. Skipped, with the reason shown,
only where Chromium is not installed (`make browser`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
    pytest.skip(f"headless Chromium is not installed ({CHROMIUM}, {CHROMEDRIVER} missing): run `make browser` "
                "(apt-get install -y chromium chromium-driver) to run the browser test", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

from phenolab.phenomena import PHENOMENA  # noqa: E402
from tests.helpers import TINY_GROK, ok  # noqa: E402
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


# ---- the atlas, as a reader sees it ---------------------------------------------------------------
WIDTHS = {"desktop": 1280, "phone": 390}
HYPOTHESIS = {
    "name": "wn-tracks-train-acc", "statement": "The weight norm tracks training accuracy.",
    "measure": "weight_norm", "target": "train_acc", "confounds": ["mean_abs_weight"],
    "scope": [{"setting": "gromov2023", "overrides": {"task.p": 13, "schedule.steps": 30,
                                                      "measures": ["weight_norm", "mean_abs_weight"]}, "seeds": 2}],
}


@pytest.fixture(scope="module")
def atlas(tmp_path_factory) -> Path:
    """One small catalog for every check below: a grokking study, its audit, a tested hypothesis."""
    root = tmp_path_factory.mktemp("atlas")
    cat = root / "cat"
    ok("reproduce", "grokking", *TINY_GROK, "--seeds", "2", "--catalog", cat)
    ok("audit", "grokking", "--setting", "gromov2023", *TINY_GROK, "--seeds", "2", "--catalog", cat)
    spec = root / "h.yaml"
    spec.write_text(yaml.safe_dump(HYPOTHESIS))
    ok("hypothesis", "register", spec, "--catalog", cat)
    ok("hypothesis", "test", HYPOTHESIS["name"], "--run-missing", "--catalog", cat)
    out = root / "site"
    ok("report", "--catalog", cat, "--out", out)
    return out


@pytest.fixture(params=list(WIDTHS), ids=list(WIDTHS))
def width(request, browser):
    """The viewport: 1280 px, or a phone (390 CSS px, its viewport meta obeyed, as a phone does)."""
    px = WIDTHS[request.param]
    if request.param == "phone":
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": px, "height": 844, "deviceScaleFactor": 2, "mobile": True})
    try:
        yield px
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def read(driver, page: Path, px: int) -> dict:
    """`visit`, checked, plus what does not fit: the page must not be wider than the screen."""
    seen = visit(driver, page)
    assert seen["errors"] == [] and seen["pwned"] is None, (page.name, seen["errors"])
    assert all(i["ok"] for i in seen["images"]), (page.name, seen["images"])
    inner, scroll = driver.execute_script("return [window.innerWidth, document.documentElement.scrollWidth]")
    assert inner == px and scroll <= inner, (page.name, inner, scroll)
    shots = os.environ.get("PHENOLAB_REPORT_SCREENSHOTS")  # a folder: keep what the test saw (docs use them)
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(shots) / f"{page.stem[:24]}-{px}.png"))
    return seen


# scrolled to vertically only: a cell cut off inside a sideways-scrolling box must count as off screen
ON_SCREEN = """const el = arguments[0];
  window.scrollTo(0, el.getBoundingClientRect().top + window.scrollY - window.innerHeight / 2);
  const r = el.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + Math.min(r.width / 2, 8), r.top + r.height / 2);
  return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth && el.contains(hit);"""


def test_the_index_is_one_card_per_phenomenon_with_its_figure(browser, atlas, width):
    read(browser, atlas / "index.html", width)
    cards = browser.execute_script("""return Array.from(document.querySelectorAll('section.card')).map(c => {
        const img = c.querySelector('.thumb img'), r = c.getBoundingClientRect();
        return {id: c.id, text: c.innerText, left: r.left, right: r.right,
                thumb: img ? {natural: img.naturalWidth, shown: img.getBoundingClientRect().width} : null}; })""")
    assert [c["id"] for c in cards] == [f"phenomenon-{name}" for name in sorted(PHENOMENA)]
    for card in cards:
        name = card["id"].removeprefix("phenomenon-")
        assert card["right"] <= width
        if name == "grokking":  # reproduced: its newest study's figure, its headline beside the published number
            assert card["thumb"]["natural"] > 0 and 100 < card["thumb"]["shown"] <= width
            assert "t_train" in card["text"] and "published (gromov2023)" in card["text"]
            assert HYPOTHESIS["name"] in card["text"]  # its hypothesis, linked
        else:
            assert card["thumb"] is None and f"Not yet reproduced — run phenolab reproduce {name}" in card["text"]
    columns = len({round(c["left"]) for c in cards})
    assert columns == 1 if width < 600 else columns >= 2


def test_a_study_page_reads_in_order_with_its_audit_and_the_checklist_folded(browser, atlas, width):
    (page,) = atlas.glob("phenomenon-grokking-*.html")
    read(browser, page, width)
    first = browser.execute_script("return document.querySelector('table.signature tbody td').innerText")
    assert first == "t_train"  # grokking's declared order, not the stored (alphabetical) one
    audit = browser.find_element("css selector", "table.audit tbody tr")
    assert audit.text.startswith("base: the setting as it is") and browser.execute_script(ON_SCREEN, audit)
    folded = browser.execute_script("""const d = document.querySelector('details.unanswered-list');
        const shown = () => Array.from(d.querySelectorAll('dd.unanswered')).filter(e => e.checkVisibility()).length;
        const before = [d.open, d.querySelector('summary').innerText, d.querySelectorAll('dd.unanswered').length,
                        shown()];
        d.open = true;  // what one click on its line does
        return [...before, shown()];""")
    assert folded == [False, "23 unanswered question(s)", 23, 0, 23]  # folded behind one line, all there
    confirm = browser.find_elements("css selector", "dd.prefilled .confirm")
    assert len(confirm) == 2 and all(browser.execute_script(ON_SCREEN, c) for c in confirm)
    assert "0 of 25 questions answered" in browser.find_element("css selector", "main").text


def test_the_hypothesis_shows_its_plot_its_runs_and_each_claim_with_its_comparison(browser, atlas, width):
    seen = read(browser, atlas / "hypotheses.html", width)
    assert [i["src"].startswith("figures/h-") for i in seen["images"]] == [True]
    claims = browser.find_elements("css selector", "td.claim")
    shown = [c for c in claims if c.text.strip()]
    assert [c.text for c in shown] == ["ρ ≥ 0.8", "partial ρ ≥ 0.8"]
    assert all(browser.execute_script(ON_SCREEN, c) for c in shown)  # on screen, not cut off in a scroll box
    links = browser.execute_script("""return Array.from(document.querySelectorAll('details.runs a'))
        .map(a => a.getAttribute('href'))""")
    assert len(links) == 2
    for href in links:
        target, anchor = href.split("#")
        browser.get((atlas / target).resolve().as_uri() + "#" + anchor)
        assert browser.execute_script("return document.getElementById(arguments[0]) !== null", anchor), href
