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
def dashboard_server(env: dict[str, str], log_path: Path, script: Path = APP, processes: list | None = None):
    """The app (or one page run alone) on a free localhost port; yields its URL once it answers
    its health check. The server's process is appended to `processes` when given (to watch it)."""
    port = free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(script),
             "--server.headless=true", f"--server.port={port}", "--server.address=127.0.0.1",
             "--browser.gatherUsageStats=false", "--server.fileWatcherType=none"],
            cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
        if processes is not None:
            processes.append(process)
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


@contextmanager
def chromium_session(profile: Path, width: int, height: int, extra_flags: tuple[str, ...] = (),
                     page_load_timeout: float = 30):
    """`chromium(...)` that is quit and whose profile folder is removed however the test ends."""
    driver = chromium(profile, width, height, extra_flags)
    driver.set_page_load_timeout(page_load_timeout)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_until(condition, seconds: float, message: str):
    """`condition()`'s first truthy value, polled every half second; fails with `message` after
    `seconds`."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(message)


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


def memory_mb(pid: int) -> dict[str, float]:
    """A process's resident memory now (`rss`) and at its peak (`peak`, since the last
    `reset_peak_memory`), in MB, from /proc (Linux)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"rss": int(fields["VmRSS"].split()[0]) / 1024, "peak": int(fields["VmHWM"].split()[0]) / 1024}


def reset_peak_memory(pid: int) -> None:
    """Start a new peak from the process's present size (Linux >= 4.0: clear_refs 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def upload_and_analyse(driver, page_url: str, paths: list[Path], analyse: str | None = "Analyse",
                       timeout: float = 600) -> None:
    """Open a page, give its file uploader `paths` and press the `analyse` button (None: the
    page analyses on upload), then wait until the page is idle again."""
    from selenium.webdriver.common.by import By

    driver.get(page_url)
    wait_until_idle(driver)
    field = driver.find_element(By.CSS_SELECTOR, '[data-testid="stFileUploader"] input[type=file]')
    field.send_keys("\n".join(str(path) for path in paths))
    wait_until_idle(driver, timeout=timeout)
    if analyse:
        next(button for button in driver.find_elements(By.TAG_NAME, "button") if button.text == analyse).click()
        time.sleep(1)
        wait_until_idle(driver, timeout=timeout)


def upload_memory(driver, url: str, pid: int, page: str, paths: list[Path], analyse: str | None = "Analyse") -> dict:
    """What one upload costs the server: its memory at rest (after a small photo was analysed, so
    the model and detector are loaded), the peak above that while the upload is analysed, and
    what it keeps afterwards, in MB."""
    warm = ROOT / "docs" / "assets" / "astronaut.jpg"
    upload_and_analyse(driver, f"{url}/{page}", [warm], analyse)
    idle = memory_mb(pid)["rss"]
    reset_peak_memory(pid)
    started = time.monotonic()
    upload_and_analyse(driver, f"{url}/{page}", paths, analyse)
    seconds = time.monotonic() - started
    after = memory_mb(pid)
    return {"idle_mb": round(idle), "peak_over_idle_mb": round(after["peak"] - idle),
            "kept_after_mb": round(after["rss"] - idle), "seconds": round(seconds, 1)}


def hostile_uploads(folder: Path, count: int = 6) -> tuple[Path, Path]:
    """A flat 79-megapixel PNG (about 250 KB that decode to gigabytes) and a zip of `count`
    of them: the uploads that once took a server from 255 MB to 4.4 GB."""
    import zipfile

    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    png = folder / "flat-79mp.png"
    Image.new("RGB", (10240, 7712), (150, 110, 90)).save(png)
    archive = folder / f"{count}-flat-79mp.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for i in range(count):
            zipped.write(png, f"flat-{i}.png")
    return png, archive
