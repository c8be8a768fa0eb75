"""How long each dashboard page takes to appear the first time, in a real browser.

Starts `streamlit run dashboard/app.py` (shipped model, no dataset chosen), waits until the
server answers, then opens every page in a fresh Chromium session (its own profile: nothing
cached in the browser, and each page's first run on the server) and measures the seconds until
the page's title is shown ("appears") and until its script run is over ("ready": charts drawn).
Several rounds, each on a new server, medians reported. Target: every page appears in ≤ 2 s.

    .venv/bin/python bench/pages.py [--rounds 3]

Needs chromium and chromedriver (apt-get install chromium chromium-driver). Last line: JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testkit.browser import CHROMIUM, chromium, dashboard_server, wait_for_heading, wait_until_idle  # noqa: E402

PAGES = [("", "Demographics"), ("training", "Training"), ("evaluation", "Evaluation"),
         ("photo", "Single photo"), ("batch", "Batch analysis"), ("live", "Live camera")]
TARGET_S = 2.0


def one_round(tmp: Path) -> dict[str, tuple[float, float]]:
    """(appear, ready) seconds per page title on a freshly started server."""
    times = {}
    env = {"AGE_GENDER_RUNS_DIR": str(tmp / "runs")}
    with dashboard_server(env, tmp / "streamlit.log") as url:
        for index, (path, title) in enumerate(PAGES):
            driver = chromium(tmp / f"profile-{time.monotonic_ns()}-{index}")
            try:
                start = time.monotonic()
                driver.get(f"{url}/{path}")  # returns once the HTML shell has loaded
                wait_for_heading(driver, title)
                appear = time.monotonic() - start
                wait_until_idle(driver)
                times[title] = (appear, time.monotonic() - start - 1.5)  # minus the idle-check's quiet period
            finally:
                driver.quit()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not CHROMIUM:
        sys.exit("needs chromium and chromedriver (apt-get install chromium chromium-driver)")
    rounds = []
    for number in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            rounds.append(one_round(Path(tmp)))
        print(f"round {number + 1}: " + ", ".join(f"{t} {a:.2f}/{r:.2f} s" for t, (a, r) in rounds[-1].items()),
              file=sys.stderr)
    result = {title: {"appear_s": round(statistics.median(r[title][0] for r in rounds), 2),
                      "ready_s": round(statistics.median(r[title][1] for r in rounds), 2)} for _, title in PAGES}
    print(f"{'page':<16}{'appears (s)':>12}{'ready (s)':>11}")
    for title, row in result.items():
        print(f"{title:<16}{row['appear_s']:>12.2f}{row['ready_s']:>11.2f}")
    print(json.dumps({"pages": result, "rounds": args.rounds, "target_appear_s": TARGET_S,
                      "all_within_target": all(r["appear_s"] <= TARGET_S for r in result.values()),
                      "cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 1)}))


if __name__ == "__main__":
    main()
