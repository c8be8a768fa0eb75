"""Face detectors compared: recall on AFW, false faces on generated face-free images, speed.

- Recall: AFW's 468 faces (faces.csv, all >= 32 px wide), overall and by |yaw|: [0, 30),
  [30, 60), [60, 105] degrees. A face is found when some detection's centre lies inside its
  box or their IoU is >= 0.3 (AFW's boxes are cut tightly round the landmarks, detectors draw
  them larger). Detections matching no annotated face are counted too, but they overstate
  false alarms: many are real faces nobody annotated. AFW is a check only: nothing is tuned
  on it.
- False faces per photo on generated 640x480 face-free images (testkit/faces.py
  `face_free`, seeds from 10,000 up). `--sweep` instead prints false faces per photo by score
  threshold on seeds 0-349, the set YuNet's MIN_SCORE was chosen on.
- Median ms per photo (one call at a time) on AFW photos resized to 640x480 and 1920x1080, and
  photos/s at 640x480 with two threads calling one detector. On a shared machine wall-clock
  figures are noisy: CPU ms per photo (all threads) says what free cores would do; the load
  average is printed with them.

Last line: JSON with every figure per detector.

    python bench/detection.py [--detector yunet blazeface] [--face-free 300] [--sweep]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import (
    DETECTORS,
    PROJECT_ROOT,  # noqa: E402
)
from core.detect import build_detector
from core.imaging.boxes import iou as _iou  # noqa: E402
from core.imaging.files import load_image  # noqa: E402
from testkit.faces import face_free  # noqa: E402

AFW = PROJECT_ROOT.parent / "shared" / "datasets" / "afw"
YAW_BINS = ((0, 30), (30, 60), (60, 180))
HELD_OUT_SEED = 10_000  # face-free seeds below this were used to choose thresholds
SWEEP_IMAGES = 350
SWEEP = (0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9)
MIN_FACE = 32


def afw_faces(folder: Path) -> dict[str, list[tuple[np.ndarray, float]]]:
    """Per photo file: (box x0 y0 x1 y1, yaw in degrees) of its faces >= MIN_FACE px wide."""
    faces = defaultdict(list)
    with open(folder / "faces.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            x, y, w, h = (float(row[k]) for k in ("x", "y", "w", "h"))
            if w >= MIN_FACE:
                faces[row["file"]].append((np.array([x, y, x + w, y + h]), float(row["yaw_deg"])))
    return dict(faces)


def recall(detector, folder: Path) -> dict:
    """Share of AFW faces found, overall and per yaw bin, and unmatched detections per photo."""
    labels = [f"{lo}-{min(hi, 90)}" for lo, hi in YAW_BINS]
    found_by_bin, total_by_bin, unmatched = dict.fromkeys(labels, 0), dict.fromkeys(labels, 0), 0
    photos = afw_faces(folder)
    for name, truth in photos.items():
        faces = detector.detect(load_image(folder / "images" / name))
        boxes = np.array([[f.x, f.y, f.x + f.w, f.y + f.h] for f in faces], np.float64).reshape(-1, 4)
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        truth_boxes = np.array([box for box, _ in truth])
        inside = ((centres[:, None] >= truth_boxes[None, :, :2]) & (centres[:, None] <= truth_boxes[None, :, 2:])).all(axis=2)
        match = inside | (_iou(boxes, truth_boxes) >= 0.3)  # (detections, faces)
        unmatched += int((~match.any(axis=1)).sum())
        for (_, yaw), found in zip(truth, match.any(axis=0)):
            label = next(label for label, (lo, hi) in zip(labels, YAW_BINS) if lo <= abs(yaw) < hi)
            total_by_bin[label] += 1
            found_by_bin[label] += bool(found)
    result = {"afw_recall": round(100 * sum(found_by_bin.values()) / sum(total_by_bin.values()), 1)}
    for label in total_by_bin:
        result[f"afw_recall_yaw_{label}"] = round(100 * found_by_bin[label] / total_by_bin[label], 1)
    result["afw_faces"] = sum(total_by_bin.values())
    result["afw_unmatched_per_photo"] = round(unmatched / len(photos), 2)
    return result


def false_faces(detector, count: int, first_seed: int, thresholds=(None,)) -> list[float]:
    """False faces per face-free photo at each threshold (None: the detector's own)."""
    floor = min((t for t in thresholds if t is not None), default=None)
    counts = np.zeros(len(thresholds))
    for seed in range(first_seed, first_seed + count):
        scores = [face.score for face in detector.detect(face_free(640, 480, seed), min_score=floor)]
        counts += [len(scores) if t is None else sum(s >= t for s in scores) for t in thresholds]
    return [round(c / count, 3) for c in counts]


def speed(detector, folder: Path, photos: int = 20) -> dict:
    """Median ms per call at 640x480 and 1920x1080, and photos/s with two threads at 640x480."""
    names = sorted(afw_faces(folder))[:photos]
    originals = [load_image(folder / "images" / name) for name in names]
    result = {}
    for width, height in ((640, 480), (1920, 1080)):
        images = [cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA) for image in originals]
        detector.detect(images[0])  # warm-up: first call per thread builds the network
        times, cpu = [], []
        for image in images:
            start, cpu_start = time.perf_counter(), time.process_time()
            detector.detect(image)
            times.append(1000 * (time.perf_counter() - start))
            cpu.append(1000 * (time.process_time() - cpu_start))
        result[f"ms_{width}x{height}"] = round(statistics.median(times), 1)
        result[f"cpu_ms_{width}x{height}"] = round(statistics.median(cpu), 1)
    small = [cv2.resize(image, (640, 480), interpolation=cv2.INTER_AREA) for image in originals] * 5
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(detector.detect, small[:4]))
        start = time.perf_counter()
        list(pool.map(detector.detect, small))
    result["photos_per_s_640x480_2_threads"] = round(len(small) / (time.perf_counter() - start), 1)
    result["load_average_1min"] = round(os.getloadavg()[0], 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", nargs="+", choices=DETECTORS, default=list(DETECTORS))
    parser.add_argument("--face-free", type=int, default=300, help="held-out face-free images")
    parser.add_argument("--afw", default=str(AFW))
    parser.add_argument("--sweep", action="store_true", help="false faces by threshold on the selection set")
    args = parser.parse_args()
    results = {}
    for name in args.detector:
        detector = build_detector(name)
        if args.sweep:
            rates = false_faces(detector, SWEEP_IMAGES, 0, SWEEP)
            results[name] = {f"false_faces_at_{t}": rate for t, rate in zip(SWEEP, rates)}
            continue
        row = {"min_score": detector.min_score, **recall(detector, Path(args.afw))}
        row["false_faces_per_photo"] = false_faces(detector, args.face_free, HELD_OUT_SEED)[0]
        results[name] = {**row, **speed(detector, Path(args.afw))}
    columns = list(next(iter(results.values())))
    print(" | ".join(["detector"] + columns))
    for name, row in results.items():
        print(" | ".join([name] + [str(row[column]) for column in columns]))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
