"""Where a batch photo's CPU time goes: decoding, detection, alignment, quality, the model.

`python -m core batch` runs these steps for every photo (decoding and detection on one thread
per core, the model on batches of faces); this script runs them one after the other on one
thread over the one-face 640x480 JPEGs of bench/process.py and reports the median CPU
milliseconds of each per photo, and the share of the whole. For YuNet the detection line is
also split: its full-size pass alone, the rest (the close-up pass, and each face measured again
on its aligned crop; see core/detect/yunet.py). Tells which step a speed-up has to come from.

    .venv/bin/python bench/stages.py [--photos 300] [--detector yunet]

Last line: JSON with the medians.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from batch import make_photos  # noqa: E402

from core.analysis.pipeline import FaceAnalyzer, load_photo  # noqa: E402
from core.batch.steps import BATCH_FACES  # noqa: E402
from core.config import DEFAULT_MODEL_DIR, DETECTORS  # noqa: E402
from core.detect import build_detector  # noqa: E402
from core.inference.predictor import Predictor  # noqa: E402


def timed(step, *args):
    """(result, CPU ms of this thread) of step(*args)."""
    start = time.thread_time()
    result = step(*args)
    return result, (time.thread_time() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--detector", choices=DETECTORS, default=DETECTORS[0])
    args = parser.parse_args()
    analyzer = FaceAnalyzer(Predictor(DEFAULT_MODEL_DIR, threads=1), build_detector(args.detector))
    ms: dict[str, list[float]] = {"decode": [], "detect": [], "align": [], "quality": [], "model": []}
    full_pass, all_crops = [], []
    with tempfile.TemporaryDirectory() as tmp:
        files = sorted(make_photos(Path(tmp) / "photos", args.photos).iterdir())
        for warm_up in files[:10]:
            analyzer.analyze_photo(warm_up)
        for file in files:
            (image, scale), cost = timed(load_photo, file)
            ms["decode"].append(cost)
            faces, cost = timed(analyzer.detect, image)
            ms["detect"].append(cost)
            if args.detector == "yunet":
                full_pass.append(timed(analyzer.detector._found, image, max(image.shape[:2]),
                                       analyzer.detector.min_score)[1])
            crops, cost = timed(analyzer.align, image, faces)
            ms["align"].append(cost)
            ms["quality"].append(timed(analyzer.measure, faces, crops, image.shape, scale)[1])
            all_crops.append(crops)
        crops = np.concatenate(all_crops)
        faces_per_photo = len(crops) / len(files)
        for start in range(0, len(crops), BATCH_FACES):  # as batch does: many photos' faces per call
            chunk = crops[start:start + BATCH_FACES]
            ms["model"].append(timed(analyzer.predict, chunk)[1] / len(chunk) * faces_per_photo)
    medians = {step: round(statistics.median(values), 2) for step, values in ms.items()}
    total = sum(medians.values())
    full = round(statistics.median(full_pass), 2) if full_pass else None
    for step, value in medians.items():
        print(f"{step:8s} {value:6.2f} ms  {value / total:5.1%}")
        if step == "detect" and full is not None:
            print(f"  full-size pass {full:6.2f} ms, the rest {value - full:5.2f} ms")
    if full is not None:
        medians["detect_full_pass"] = full
    print(f"total    {total:6.2f} ms CPU per photo (one thread; {args.photos} one-face 640x480 JPEGs)")
    print(json.dumps({"cpu_ms_per_photo": medians, "total_ms": round(total, 2), "photos": args.photos,
                      "detector": args.detector}))


if __name__ == "__main__":
    main()
