"""The built book in a real browser: headless Chromium (Debian's chromium + chromium-driver) loads
every page from a local web server and finds no console errors, rendered math (MathJax from the
book's own _static, no CDN), its figures, and Colab links that open the chapter's .ipynb.
Screenshots of a few pages are kept in _build/screenshots/ as build artifacts.

Skipped without a build or without Chromium, unless LANGEDIT_REQUIRE_BROWSER=1 (as in CI).
"""

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
REQUIRED = os.environ.get("LANGEDIT_REQUIRE_BROWSER") == "1"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.browser


def _missing() -> str | None:
    if not (HTML / "index.html").exists():
        return "no built book (make book)"
    if not (CHROMIUM and DRIVER):
        return "no chromium/chromedriver (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    return None


if _missing():
    if REQUIRED:
        raise RuntimeError(f"browser test required but {_missing()}")
    pytest.skip(_missing(), allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

PAGES = sorted(
    p.relative_to(HTML).as_posix()
    for p in HTML.rglob("*.html")
    if not p.relative_to(HTML).as_posix().startswith(("_static/", "_sources/", "genindex", "search"))
)
CHAPTERS = [p for p in PAGES if p.startswith("notebooks/")]
MATH_PAGES = ["notebooks/01_theory.html", "notebooks/02_guarantee.html"]
SCREENSHOT_PAGES = ["book/intro.html", "notebooks/01_theory.html", "notebooks/05_sequential.html"]


@pytest.fixture(scope="module")
def server():
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # no request log on stderr
            pass

    handler = functools.partial(Quiet, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # no background connections: the machine's network is closed except for package registries
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def load(browser, server, page):
    browser.get(f"{server}/{page}")
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def test_the_book_has_its_chapters():
    assert "book/intro.html" in PAGES and "index.html" in PAGES
    assert len(CHAPTERS) >= 6, CHAPTERS


@pytest.mark.parametrize("page", PAGES)
def test_every_page_loads_without_console_errors(browser, server, page):
    errors = load(browser, server, page)
    assert not errors, [e["message"] for e in errors]
    assert browser.find_elements(By.TAG_NAME, "article") or browser.find_elements(By.TAG_NAME, "main")


@pytest.mark.parametrize("page", MATH_PAGES)
def test_math_is_rendered_by_the_books_own_mathjax(browser, server, page):
    load(browser, server, page)
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.TAG_NAME, "mjx-container"))
    sources = browser.execute_script("return Array.from(document.scripts).map(s => s.src)")
    mathjax = [s for s in sources if "mathjax" in s.lower()]
    assert mathjax and all(s.startswith(server) for s in mathjax), mathjax  # served locally, not from a CDN
    assert not browser.find_elements(By.CSS_SELECTOR, "mjx-merror")  # no TeX errors


@pytest.mark.parametrize("page", CHAPTERS)
def test_chapter_figures_load_and_colab_opens_its_notebook(browser, server, page):
    load(browser, server, page)
    images = browser.find_elements(By.CSS_SELECTOR, "article img, main img")
    broken = [
        i.get_attribute("src")
        for i in images
        if not browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i)
    ]
    assert not broken, broken
    links = [
        a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a[href*='colab.research.google.com']")
    ]
    assert links and all(link.endswith(f"{Path(page).with_suffix('.ipynb').as_posix()}") for link in links), links


@pytest.mark.parametrize("page", SCREENSHOT_PAGES)
def test_screenshots_of_a_few_pages(browser, server, page):
    load(browser, server, page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / (page.replace("/", "_").replace(".html", ".png"))
    assert browser.save_screenshot(str(path))
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one


def test_the_report_reads_at_1280_pixels_without_horizontal_scrolling(browser, server):
    """The reproduction report in a 1280-pixel window: the page does not scroll sideways and no table is wider
    than the text column it sits in."""
    load(browser, server, "book/report.html")
    wide = browser.execute_script(
        """
        const column = document.querySelector('article') || document.querySelector('main');
        const limit = column.getBoundingClientRect().width + 1;
        return Array.from(column.querySelectorAll('table'))
            .map(t => Math.round(t.getBoundingClientRect().width))
            .filter(width => width > limit);
        """
    )
    assert not wide, f"tables wider than the text column: {wide} px"
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
