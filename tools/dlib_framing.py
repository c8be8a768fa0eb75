"""How the dlib teachers (tools/teacher_dlib.py, tools/teacher_embedding.py) read and frame a face
crop, in one place so both see the same face: Pillow to RGB, dlib's HOG detector without
upsampling, then with one upsampling if nothing was found, the largest face; where HOG finds
nothing, the whole image is the face box (UTKFace crops are faces framed with a margin).
Runs in the peer venv (needs dlib)."""
from __future__ import annotations

import sys
from pathlib import Path

import dlib
import numpy as np
from PIL import Image

FRAMINGS = ("hog", "hog-upsampled", "whole")


def read_rgb(path: str) -> np.ndarray | None:
    """The image as a contiguous RGB array, or None (reason on stderr) when it cannot be read."""
    try:
        return np.ascontiguousarray(np.asarray(Image.open(path).convert("RGB")))
    except Exception as exc:  # unreadable file: the caller skips and counts it
        print(f"skipped {Path(path).name}: {exc}", file=sys.stderr, flush=True)
        return None


def face_box(detector, image: np.ndarray) -> tuple[str, "dlib.rectangle"]:
    """(framing, box): which of FRAMINGS found the face, and its box."""
    framing, boxes = "hog", detector(image, 0)
    if not len(boxes):
        framing, boxes = "hog-upsampled", detector(image, 1)
    if len(boxes):
        return framing, max(boxes, key=lambda r: r.area())
    return "whole", dlib.rectangle(0, 0, image.shape[1] - 1, image.shape[0] - 1)
