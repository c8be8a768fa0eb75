"""What one hostile upload costs the dashboard's server: its peak memory over the idle server.

Starts the app (`streamlit run`, headless Chromium, as the browser tests do), analyses a small
photo so the model and detector are loaded, then uploads a flat 79-megapixel PNG to Single photo
and a zip of six of them to Batch analysis, reading the server's resident memory from /proc
(peak reset before each upload). The README promises at most 1 GB over the idle server per
upload; tests/test_dashboard_browser.py holds the zip to it.

    python bench/uploads.py            # prints a line per upload and one JSON line
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testkit.browser import chromium, dashboard_server, hostile_uploads, upload_memory  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        png, archive = hostile_uploads(Path(tmp) / "uploads")
        processes: list = []
        with dashboard_server({}, Path(tmp) / "streamlit.log", processes=processes) as url:
            driver = chromium(Path(tmp) / "chromium")
            try:
                pid = processes[0].pid
                results = {"single photo: one flat 79 MP PNG": upload_memory(driver, url, pid, "photo", [png], None),
                           "batch: zip of six flat 79 MP PNGs": upload_memory(driver, url, pid, "batch", [archive])}
            finally:
                driver.quit()
    for name, row in results.items():
        print(f"{name}: idle {row['idle_mb']} MB, peak +{row['peak_over_idle_mb']} MB, "
              f"+{row['kept_after_mb']} MB kept after, {row['seconds']} s")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
