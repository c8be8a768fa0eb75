"""Screenshots of every dashboard page for the README, made from the shipped artifacts alone.

Serves the app with the shipped model and no dataset (sample-face galleries stay empty, so no
UTKFace or other dataset image can appear: those may not be redistributed), uploads the
public-domain photo in docs/assets/ on the Single photo and Batch pages, and saves a full-page
PNG of each page at each width into docs/screenshots/ (`{page}-{width}.png`).

    .venv/bin/python docs/screenshots.py [--widths 1400 800]

Needs chromium and chromedriver (apt-get install chromium chromium-driver).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testkit.browser import CHROMIUM, chromium, dashboard_server, wait_for_heading, wait_until_idle  # noqa: E402

PHOTO = ROOT / "docs" / "assets" / "astronaut.jpg"
OUT = ROOT / "docs" / "screenshots"
PAGES = [("", "Demographics", None), ("training", "Training", None), ("evaluation", "Evaluation", None),
         ("photo", "Single photo", PHOTO), ("batch", "Batch analysis", PHOTO), ("live", "Live camera", None)]


def shoot(driver, url: str, title: str, upload: Path | None, file: Path, width: int) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url)
    wait_for_heading(driver, title)
    wait_until_idle(driver)
    if upload:
        driver.find_element(By.CSS_SELECTOR, '[data-testid="stFileUploader"] input[type=file]').send_keys(str(upload))
        wait_until_idle(driver, timeout=120)
        buttons = [b for b in driver.find_elements(By.CSS_SELECTOR, "button") if b.text.strip() == "Analyse"]
        if buttons:
            buttons[0].click()
            wait_until_idle(driver, timeout=120)
    height = driver.execute_script("return document.querySelector('[data-testid=stMain]').scrollHeight")
    driver.set_window_size(width, min(max(height + 80, 900), 6000))
    wait_until_idle(driver)
    driver.save_screenshot(str(file))
    picture = trimmed(Image.open(file).convert("RGB"))
    picture.quantize(256).save(file, optimize=True)  # a quarter of the bytes


def trimmed(picture: Image.Image, margin: int = 40) -> Image.Image:
    """The screenshot without the empty page below the last element of the main area."""
    pixels = np.asarray(picture)
    main = pixels[:, picture.width // 4:]  # right of the sidebar
    used = np.flatnonzero((np.abs(main.astype(int) - main[-1:, :].astype(int)).sum(axis=2) > 30).any(axis=1))
    bottom = min(picture.height, (used[-1] if used.size else picture.height) + margin)
    return picture.crop((0, 0, picture.width, bottom))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[1400, 800])
    args = parser.parse_args()
    if not CHROMIUM:
        sys.exit("needs chromium and chromedriver (apt-get install chromium chromium-driver)")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        env = {"AGE_GENDER_DATASET_DIR": str(Path(tmp) / "no-dataset"), "AGE_GENDER_RUNS_DIR": str(Path(tmp) / "runs")}
        with dashboard_server(env, Path(tmp) / "streamlit.log") as url:
            for width in args.widths:
                driver = chromium(Path(tmp) / f"profile-{width}", width, 1000)
                try:
                    for path, title, upload in PAGES:
                        file = OUT / f"{title.lower().replace(' ', '-')}-{width}.png"
                        shoot(driver, f"{url}/{path}", title, upload, file, width)
                        print(f"wrote {file.relative_to(ROOT)}")
                finally:
                    driver.quit()


if __name__ == "__main__":
    main()
