"""The dashboard in a real browser: `streamlit run` headless, every page opened in Chromium.

Checks what AppTest cannot: the pages render without an exception box and plotly draws its
charts. Screenshots go to $DASHBOARD_SCREENSHOTS (default: the test's tmp folder) for a look.
Skips when chromium or chromedriver are not installed.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from core.config import PROJECT_ROOT
from test_dashboard import group_photo, run_dir  # noqa: F401  (run_dir: the shared run-folder fixture)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs chromium and chromedriver (apt-get install chromium chromium-driver)")

# url path, title shown, least number of plotly charts drawn
PAGES = [("", "Demographics", 5), ("training", "Training", 3), ("evaluation", "Evaluation", 6),
         ("photo", "Single photo", 0), ("batch", "Batch analysis", 0), ("live", "Live camera", 0)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(run_dir, tmp_path_factory):  # noqa: F811
    port = _free_port()
    env = {**os.environ, "AGE_GENDER_MODEL_DIR": str(run_dir),
           "AGE_GENDER_RUNS_DIR": str(tmp_path_factory.mktemp("runs"))}
    log = (tmp_path_factory.mktemp("server") / "streamlit.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "dashboard" / "app.py"),
         "--server.headless=true", f"--server.port={port}", "--server.address=127.0.0.1",
         "--browser.gatherUsageStats=false", "--server.fileWatcherType=none"],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start: {Path(log.name).read_text()[-2000:]}")
            time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(timeout=20)
    log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1500,2200", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("DASHBOARD_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait_until_idle(driver, timeout: float = 60) -> None:
    """Until the script run is over and the page stopped changing (charts drawn)."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        state = driver.execute_script(
            "const app = document.querySelector('[data-testid=stApp]');"
            "return app && app.getAttribute('data-test-script-state');")
        if state == "notRunning":
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 1.5:
                return
        else:
            quiet_since = None
        time.sleep(0.25)
    raise AssertionError(f"page still running after {timeout} s")


def test_a_deep_link_on_a_fresh_server_opens_inside_the_app(server, browser):
    """Runs first: no session has opened the home page yet."""
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/training")
    wait_until_idle(browser)
    assert "Page not found" not in browser.find_element(By.TAG_NAME, "body").text
    assert "Run folder" in browser.find_element(By.CSS_SELECTOR, '[data-testid="stSidebar"]').text


@pytest.mark.parametrize("path, title, charts", PAGES, ids=[p[1] for p in PAGES])
def test_every_page_renders_in_chromium(server, browser, screenshots, path, title, charts):
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/{path}")
    wait_until_idle(browser)
    headings = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "h1")]
    exceptions = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    browser.save_screenshot(str(screenshots / f"{title.lower().replace(' ', '_')}.png"))
    assert not exceptions, exceptions[0].text
    assert title in headings
    drawn = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stPlotlyChart"] .main-svg')
    assert len({el.find_element(By.XPATH, "./ancestor::*[@data-testid='stPlotlyChart']").id for el in drawn}) >= charts
    sidebar = browser.find_element(By.CSS_SELECTOR, '[data-testid="stSidebar"]').text
    assert "Run folder" in sidebar and "Source" in sidebar  # the global choices on every page


def test_a_photo_uploaded_in_the_browser_comes_back_annotated(server, browser, screenshots, utkface_dir, tmp_path):
    from selenium.webdriver.common.by import By

    photo = tmp_path / "group.jpg"
    photo.write_bytes(group_photo(utkface_dir, 2))
    browser.get(f"{server}/photo")
    wait_until_idle(browser)
    browser.find_element(By.CSS_SELECTOR, '[data-testid="stFileUploader"] input[type=file]').send_keys(str(photo))
    wait_until_idle(browser, timeout=90)
    browser.save_screenshot(str(screenshots / "single_photo_result.png"))
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    metrics = {m.find_element(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]').text:
               m.find_element(By.CSS_SELECTOR, '[data-testid="stMetricValue"]').text
               for m in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]')}
    assert metrics.get("Faces found") == "2"
    images = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stImage"] img')
    assert len(images) == 3 and all(img.get_property("naturalWidth") > 0 for img in images)
