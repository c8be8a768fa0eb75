"""Worker of `tools/teacher_labels.py embed`: dlib's face-recognition ResNet (PyPI
`face-recognition-models` 0.3.0, model CC0) over a list of face crops. Training-time only.

Why: that network was trained on about 3 million faces of thousands of people in the wild, so its
128-D embedding carries what such faces look like far beyond UTKFace; a linear probe on it,
fitted on our training split only (`teacher_labels.py probe`), becomes a gender teacher.

Runs in a Python that has `dlib` and `face-recognition-models` (not the product's venv), e.g.
`/work/peer-venv/bin/python tools/teacher_embedding.py LIST OUT.npz`. LIST holds one image path a
line. Each image is framed as dlib frames faces for this network: `dlib_framing.face_box`, 5-point
landmarks, `get_face_chip` at 150 px with padding 0.25. Writes `files` (the paths as listed), `embeddings`
(n x 128 float32) and `framing`. Unreadable images are skipped and counted.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import dlib
import face_recognition_models as models
import numpy as np
from dlib_framing import face_box, read_rgb

BATCH = 64
CHIP_SIZE, CHIP_PADDING = 150, 0.25


def main(listing: str, out: str) -> int:
    paths = [line.strip() for line in Path(listing).read_text().splitlines() if line.strip()]
    detector = dlib.get_frontal_face_detector()
    landmarks = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    network = dlib.face_recognition_model_v1(models.face_recognition_model_location())
    files, framings, embeddings, bad = [], [], [], 0
    started = time.time()
    for start in range(0, len(paths), BATCH):
        chips = []
        for path in paths[start:start + BATCH]:
            image = read_rgb(path)
            if image is None:
                bad += 1
                continue
            framing, box = face_box(detector, image)
            chips.append(dlib.get_face_chip(image, landmarks(image, box), CHIP_SIZE, CHIP_PADDING))
            files.append(path)
            framings.append(framing)
        if chips:
            embeddings.append(np.asarray(network.compute_face_descriptor(chips), np.float32))
        done = len(files)
        if (start // BATCH) % 10 == 0 or start + BATCH >= len(paths):
            print(f"embedding teacher: {done}/{len(paths)} faces, {done / max(time.time() - started, 1e-9):.1f}/s",
                  flush=True)
    np.savez(out, files=np.array(files), framing=np.array(framings),
             embeddings=np.concatenate(embeddings) if embeddings else np.zeros((0, 128), np.float32))
    print(f"embedding teacher: wrote {len(files)} embeddings to {out}; skipped {bad} unreadable file(s); "
          f"{framings.count('whole')} framed as the whole image", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: teacher_embedding.py LIST OUT.npz")
    sys.exit(main(sys.argv[1], sys.argv[2]))
