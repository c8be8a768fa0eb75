"""The Video page in a real browser: headless Chromium uploads a generated clip (three people, made
here from the public-domain astronaut portrait), presses Analyse, and must get the per-person
table, the who-was-when chart and an annotated video that the browser itself decodes and plays.
Skips without chromium, chromedriver or selenium.
"""
from __future__ import annotations

import pytest

from testkit.browser import CHROMEDRIVER, CHROMIUM, chromium_session, dashboard_server, wait_until, wait_until_idle
from testkit.clips import astronaut_faces, entrance, write_clip

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs chromium and chromedriver (apt-get install chromium chromium-driver)")


@pytest.fixture
def server(tiny_model_dir, tmp_path):
    env = {"AGE_GENDER_MODEL_DIR": str(tiny_model_dir), "AGE_GENDER_RUNS_DIR": str(tmp_path / "runs")}
    with dashboard_server(env, tmp_path / "streamlit.log") as url:
        yield url
    print((tmp_path / "streamlit.log").read_text()[-3000:])  # shown by pytest on failure


@pytest.fixture
def browser(tmp_path):
    pytest.importorskip("selenium.webdriver")
    with chromium_session(tmp_path / "chromium-profile", 1400, 2400, ("--autoplay-policy=no-user-gesture-required",),
                          page_load_timeout=60) as driver:
        yield driver


def test_an_uploaded_video_comes_back_as_people_and_a_playing_annotated_video(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    video = write_clip(entrance(), astronaut_faces(3), tmp_path / "entrance.mp4")
    browser.get(f"{server}/video")
    wait_until_idle(browser)
    browser.find_element(By.CSS_SELECTOR, '[data-testid="stFileUploader"] input[type=file]').send_keys(str(video))
    analyse = wait_until(lambda: [b for b in browser.find_elements(By.CSS_SELECTOR, "button")
                                  if b.text.strip() == "Analyse" and b.is_enabled()], 30, "Analyse never enabled")[0]
    analyse.click()
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"]'), 120,
               "no people table after the analysis")
    wait_until_idle(browser)
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    metrics = {m.find_element(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]').text.strip():
               m.find_element(By.CSS_SELECTOR, '[data-testid="stMetricValue"]').text.strip()
               for m in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]')}
    assert metrics["People"] == "3"
    assert browser.find_elements(By.CSS_SELECTOR, '[data-testid="stPlotlyChart"] .main-svg')

    state = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const v = document.querySelector('video');"
        "if (!v) { done(null); return; }"
        "v.muted = true;"
        "v.play().then(() => setTimeout(() => done({w: v.videoWidth, h: v.videoHeight, t: v.currentTime,"
        "  paused: v.paused, error: v.error && v.error.code, duration: v.duration}), 1500))"
        "  .catch(e => done({error: String(e)}));")
    assert state and state.get("error") is None, state
    assert (state["w"], state["h"]) == (640, 360) and state["t"] > 0 and not state["paused"]
    assert abs(state["duration"] - 8.0) < 0.2
