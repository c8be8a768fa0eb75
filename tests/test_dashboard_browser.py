"""The dashboard in a real browser: `streamlit run` headless, every page opened in Chromium.

Checks what AppTest cannot: the pages render without an exception box and plotly draws its
charts. Screenshots go to $DASHBOARD_SCREENSHOTS (default: the test's tmp folder) for a look.
Skips when chromium or chromedriver are not installed.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from test_dashboard import group_photo, run_dir  # noqa: F401  (run_dir: the shared run-folder fixture)

from testkit.browser import CHROMEDRIVER, CHROMIUM, chromium, dashboard_server, wait_until_idle

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs chromium and chromedriver (apt-get install chromium chromium-driver)")

# url path, title shown, least number of plotly charts drawn
PAGES = [("", "Demographics", 5), ("training", "Training", 3), ("evaluation", "Evaluation", 6),
         ("photo", "Single photo", 0), ("batch", "Batch analysis", 0), ("live", "Live camera", 0)]


@pytest.fixture(scope="module")
def server(run_dir, tmp_path_factory):  # noqa: F811
    env = {"AGE_GENDER_MODEL_DIR": str(run_dir), "AGE_GENDER_RUNS_DIR": str(tmp_path_factory.mktemp("runs"))}
    with dashboard_server(env, tmp_path_factory.mktemp("server") / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = chromium(tmp_path_factory.mktemp("chromium"))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("DASHBOARD_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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


def test_a_photo_uploaded_in_the_browser_comes_back_annotated(server, browser, screenshots, tmp_path):
    from selenium.webdriver.common.by import By

    photo = tmp_path / "group.jpg"
    photo.write_bytes(group_photo(2))
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


def test_no_deploy_button_for_visitors(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/photo")
    wait_until_idle(browser)
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stAppDeployButton"]')
    assert "Deploy" not in browser.find_element(By.TAG_NAME, "body").text


def test_one_upload_costs_the_server_under_1_gb(run_dir, tmp_path_factory):  # noqa: F811
    """A 1.9 MB zip of six flat 79-megapixel PNGs took the server from 255 MB to 4.4 GB, and it
    kept 1.7 GB after one such photo. Measured on the served app (bench/uploads.py prints it)."""
    from testkit.browser import hostile_uploads, upload_memory

    folder = tmp_path_factory.mktemp("hostile")
    _, archive = hostile_uploads(folder)
    processes = []
    env = {"AGE_GENDER_MODEL_DIR": str(run_dir), "AGE_GENDER_RUNS_DIR": str(folder / "runs")}
    with dashboard_server(env, folder / "streamlit.log", processes=processes) as url:
        driver = chromium(folder / "chromium")
        try:
            cost = upload_memory(driver, url, processes[0].pid, "batch", [archive])
            from selenium.webdriver.common.by import By

            metrics = {m.find_element(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]').text:
                       m.find_element(By.CSS_SELECTOR, '[data-testid="stMetricValue"]').text
                       for m in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]')}
        finally:
            driver.quit()
    assert metrics.get("Images") == "6", metrics  # all analysed (shrunk), none refused
    assert cost["peak_over_idle_mb"] < 1024, cost
    assert cost["kept_after_mb"] < 150, cost  # memory handed back


OVERLAPS = """
const chart = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
  .find(el => (el.querySelector('.gtitle') || {}).textContent?.includes(arguments[0]));
if (!chart) return null;
const boxes = [...chart.querySelectorAll('text.bartext')].filter(t => t.textContent)
  .map(t => ({text: t.textContent, rect: t.getBoundingClientRect()}));
const pairs = [];
for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
  const a = boxes[i].rect, b = boxes[j].rect;
  if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) pairs.push([boxes[i].text, boxes[j].text]);
}
return {labels: boxes.length, overlapping: pairs};
"""


@pytest.mark.parametrize("width", [1500, 800])
def test_coverage_labels_do_not_overlap(server, tmp_path, width):
    """The interval-coverage chart's labels ("80%<br>n=123" above ten grouped bars) ran into each other."""
    driver = chromium(tmp_path / "chromium", width=width)
    try:
        driver.get(f"{server}/evaluation")
        wait_until_idle(driver)
        deadline = time.monotonic() + 30
        found = None
        while (found is None or found["labels"] < 4) and time.monotonic() < deadline:  # drawn once in view
            driver.execute_script("document.querySelectorAll('[data-testid=\"stPlotlyChart\"]')"
                                  ".forEach(el => el.scrollIntoView());")
            time.sleep(0.5)
            found = driver.execute_script(OVERLAPS, "age intervals")
    finally:
        driver.quit()
    assert found is not None and found["labels"] >= 4, found
    assert found["overlapping"] == [], found
