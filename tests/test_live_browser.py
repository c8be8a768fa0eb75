"""The live page in a real browser: headless Chromium's fake camera plays a .y4m clip of real
UTKFace faces (made here, in a temp dir), streams it over WebRTC to the page served by
`streamlit run dashboard/views/live.py`, and the page must report the faces it found in the
frames that came back. Skips without /usr/bin/chromium, /usr/bin/chromedriver or selenium.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.config import PROJECT_ROOT
from testkit.browser import CHROMEDRIVER, CHROMIUM, chromium_session, dashboard_server, wait_until
from testkit.faces import astronaut_crops
from testkit.video import scene, write_y4m

PAGE = PROJECT_ROOT / "dashboard" / "views" / "live.py"
DEADLINE = 75  # seconds for the whole browser session, server start included

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs chromium and chromedriver (apt-get install chromium chromium-driver)")


@pytest.fixture
def fake_camera(tmp_path) -> Path:
    """Two faces walking to and fro; played forwards then backwards so the camera's loop is seamless."""
    frames = [frame for frame, _ in scene(astronaut_crops(2, seed=3), 20, speed=3, seed=3)]
    return write_y4m(frames + frames[::-1], tmp_path / "camera.y4m", fps=15)


@pytest.fixture
def server(tiny_model_dir, tmp_path):
    """The live page alone, served by Streamlit on a free port: its URL once it answers."""
    env = {"AGE_GENDER_MODEL_DIR": str(tiny_model_dir), "WEBRTC_ICE_SERVERS": "[]"}
    with dashboard_server(env, tmp_path / "streamlit.log", script=PAGE) as url:
        yield url
    print((tmp_path / "streamlit.log").read_text()[-3000:])  # shown by pytest on failure


@pytest.fixture
def browser(fake_camera, tmp_path):
    pytest.importorskip("selenium.webdriver")
    with chromium_session(tmp_path / "chromium-profile", 1280, 1400,
                          ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                           f"--use-file-for-fake-video-capture={fake_camera}")) as driver:
        yield driver


def metrics(driver) -> dict[str, str]:
    from selenium.webdriver.common.by import By

    found = {}
    for element in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]'):
        label = element.find_elements(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]')
        value = element.find_elements(By.CSS_SELECTOR, '[data-testid="stMetricValue"]')
        if label and value:
            found[label[0].text.strip()] = value[0].text.strip()
    return found


def test_fake_camera_frames_come_back_annotated_with_faces(server, browser):
    from selenium.webdriver.common.by import By

    start = time.monotonic()
    browser.get(server)
    component = wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, 'iframe[title*="webrtc"]'),
                           40, "the WebRTC component did not appear (model load or page error?)")[0]
    browser.switch_to.frame(component)
    start_button = wait_until(lambda: [b for b in browser.find_elements(By.TAG_NAME, "button")
                                       if b.text.strip().upper() == "START"], 15, "no START button")[0]
    start_button.click()
    browser.switch_to.default_content()

    seen = wait_until(lambda: (lambda m: m if m.get("Faces in view") == "2" else None)(metrics(browser)),
                      DEADLINE - (time.monotonic() - start), "the page never reported the two faces")
    assert float(seen["Frames per second"]) > 0
    assert int(seen["People seen"]) >= 1

    browser.switch_to.frame(browser.find_element(By.CSS_SELECTOR, 'iframe[title*="webrtc"]'))
    video = browser.execute_script(
        "const v = document.querySelector('video');"
        "return v && {w: v.videoWidth, h: v.videoHeight, t: v.currentTime, paused: v.paused};")
    assert video and (video["w"], video["h"]) == (640, 480) and not video["paused"]
    assert video["t"] > 0  # the processed stream is playing in the page
