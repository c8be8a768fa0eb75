"""Large faces: does the detector put one right box on a face that fills much of the photo?

AFW (bench/detection.py) has few faces over 300 px, but selfies and portraits are mostly face, and
YuNet, trained on faces of 10-300 px, needs its close-up pass for them (core/detect/yunet.py). This pastes
`--faces` UTKFace crops (ones the detector finds confidently in the crop itself) into synthetic
photos of several shapes at sizes up to twice the photo's shorter side (the face is about half
the crop, so up to the whole frame), slightly off-centre and tilted, and counts photos where a
found box overlaps the true face (the crop's own detection mapped into the photo) with IoU > 0.5,
and the boxes that do not. Last line: JSON.

    .venv/bin/python bench/closeups.py [--faces 40] [--detector yunet]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.config import DEFAULT_DATASET_DIR, DETECTORS  # noqa: E402
from core.detect import build_detector  # noqa: E402
from core.detect.face import face_boxes  # noqa: E402
from core.imaging.boxes import iou  # noqa: E402
from core.imaging.files import load_image  # noqa: E402
from testkit.faces import background, clear_faces, paste, pasted_face_box  # noqa: E402

PHOTOS = ((640, 480), (1280, 720), (1000, 1000))
CROP_SIDES = (0.5, 0.8, 1.1, 1.4, 1.8, 2.2)  # times the photo's shorter side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=40)
    parser.add_argument("--detector", choices=DETECTORS, default=DETECTORS[0])
    args = parser.parse_args()
    detector = build_detector(args.detector)
    crops = [load_image(path) for path, _, _ in clear_faces(DEFAULT_DATASET_DIR, args.faces, detector, seed=21)]
    own = [detector.detect(crop)[0] for crop in crops]
    results = {}
    print("photo | crop side | face px (median, visible part) | right | other boxes")
    for width, height in PHOTOS:
        for factor in CROP_SIDES:
            side, right, other, sizes = factor * min(width, height), 0, 0, []
            for i, (crop, face) in enumerate(zip(crops, own)):
                photo, rng = background(width, height, seed=i), np.random.default_rng(i)
                centre = (width * (0.5 + rng.uniform(-0.1, 0.1)), height * (0.5 + rng.uniform(-0.1, 0.1)))
                truth = pasted_face_box(face, paste(photo, crop, centre, side, angle=rng.uniform(-10, 10)), width, height)
                found = detector.detect(photo)
                hits = int((iou(face_boxes(found), truth)[:, 0] > 0.5).sum()) if found else 0
                right += hits >= 1
                other += len(found) - min(hits, 1)
                sizes.append(truth[3] - truth[1])
            key = f"{width}x{height} crop {factor:g}x"
            results[key] = {"face_px": round(float(np.median(sizes))), "right": right, "other_boxes": other}
            print(f"{width}x{height} | {factor:g}x | {results[key]['face_px']} | {right}/{len(crops)} | {other}", flush=True)
    print(json.dumps({"detector": args.detector, "faces": len(crops), "photos": results}))


if __name__ == "__main__":
    main()
