"""How much detection + alignment changes the model's answers compared with the aligned crops.

Pastes UTKFace crops (rotated ±12°, 130-330 px) into synthetic 640x480 photos, finds and aligns
each face with the project's detector, and compares the predictions on the aligned face with
those on the original crop. The same construction as tests/test_faces.py, on more faces. Last
line: JSON with the median and 90th percentile of |age difference| and |p_female difference|
and the share of faces whose predicted gender agrees.

    python bench/pasted.py [--faces 120] [--model models/default] [--detector yunet]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import DEFAULT_DATASET_DIR, DEFAULT_MODEL_DIR, DETECTORS  # noqa: E402
from core.detect import build_detector  # noqa: E402
from core.inference.predictor import Predictor  # noqa: E402
from testkit.faces import pasted_and_aligned  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=120)
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    parser.add_argument("--data", default=str(DEFAULT_DATASET_DIR))
    parser.add_argument("--detector", choices=DETECTORS, default=DETECTORS[0])
    args = parser.parse_args()
    predictor, detector = Predictor(args.model), build_detector(args.detector)
    crops, aligned = pasted_and_aligned(Path(args.data), args.faces, detector, predictor.image_size)
    ages, p_female = predictor.predict_arrays(predictor.prepare(crops))
    photo_ages, photo_p_female = predictor.predict_arrays(aligned)
    age_diff, p_diff = np.abs(photo_ages - ages), np.abs(photo_p_female - p_female)
    print(json.dumps({
        "faces": len(crops),
        "age_diff_median": round(float(np.median(age_diff)), 2), "age_diff_p90": round(float(np.percentile(age_diff, 90)), 2),
        "p_female_diff_median": round(float(np.median(p_diff)), 4), "p_female_diff_p90": round(float(np.percentile(p_diff, 90)), 3),
        "same_gender": round(float(np.mean((photo_p_female >= 0.5) == (p_female >= 0.5))), 3), "model": args.model, "detector": args.detector}))


if __name__ == "__main__":
    main()
