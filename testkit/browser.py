"""The dashboard served by `streamlit run` and driven by headless Chromium.

Shared by the browser tests, `bench/pages.py` (how long each page takes to appear) and
`docs/screenshots.py`, so all three start and watch the app the same way.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


APP = ROOT / "dashboard" / "app.py"


@contextmanager
def dashboard_server(env: dict[str, str], log_path: Path, script: Path = APP):
    """The app (or one page run alone) on a free localhost port; yields its URL once it answers
    its health check."""
    port = free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(script),
             "--server.headless=true", f"--server.port={port}", "--server.address=127.0.0.1",
             "--browser.gatherUsageStats=false", "--server.fileWatcherType=none"],
            cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        try:
            while True:
                try:
                    if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"streamlit did not start: {log_path.read_text()[-2000:]}")
                    time.sleep(0.25)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=20)


def chromium(profile: Path, width: int = 1500, height: int = 2200, extra_flags: tuple[str, ...] = ()):
    """A headless Chromium driver with the flags this offline machine needs."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--window-size={width},{height}", f"--user-data-dir={profile}", *extra_flags):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


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


def wait_for_heading(driver, title: str, timeout: float = 60) -> float:
    """Seconds until an h1 with `title` is on the page (what a person sees as "it opened")."""
    from selenium.webdriver.common.by import By

    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if any(h.text == title for h in driver.find_elements(By.CSS_SELECTOR, "h1")):
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"no heading {title!r} after {timeout} s")
