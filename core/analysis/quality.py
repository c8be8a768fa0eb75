"""How fit a face is to be read: its size, sharpness, exposure and head pose, and a verdict.

The model was trained on UTKFace's 200 px frontal, evenly lit crops; a face far from that is
read worse. Each measure has a threshold past which the error measured by `bench/quality.py`
(validation crops degraded step by step, and turned faces found by the detector) clearly grows;
a face past any of them is `poor`, with the reasons in `issues`. The thresholds and the curves
they come from are in the model card. Measures are taken on the model's own aligned crop where
they concern pixels (what the model sees), and on the detection where they concern geometry.
Pixel measures are taken at MEASURE_SIDE whatever the model's input: the Laplacian's variance of
the same face falls as it is sampled finer, so a 64 px crop would read as blurrier than the 48 px
crops the thresholds were set on (`core.analysis.pipeline.FaceFinder.views` aligns one).

A detector can also find a "face" with none of a face's features, the back of a head above all
(YuNet puts its five points on a hair bun with a score of 0.75). So a face the detector was not
sure of (score under CONFIRM_BELOW) is graded good only when a second detector of another design
(BlazeFace, which needs eyes, nose and mouth) finds it too in its surroundings; otherwise its issue
is `unconfirmed`. On AFW's 205 photos it flags 11 of the 297 otherwise good faces and none of
AFW's annotated faces (`python bench/confirm.py`); those looked at are a back of a head, hands, a
shirt, a glass.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..detect.align import alignment_matrix
from ..detect.blazeface import BlazeFaceDetector
from ..detect.face import Face

# Thresholds, from the curves of `python bench/quality.py` on the validation split (MODEL_CARD.md,
# "Face quality"): the boundary past which age MAE exceeds 1.2x that of undegraded crops (5.09).
MIN_SIZE_PX = 32  # side of the aligned crop in the photo's pixels (a UTKFace crop: 200); 24 px: MAE 6.71
MIN_SHARPNESS = 190.0  # variance of the Laplacian of the model's grey crop; 109-188: MAE 6.18
MIN_BRIGHTNESS = 47.0  # mean grey level of the crop, 0-255; 36-47: MAE 6.52
MAX_CLIPPED = 0.24  # share of the crop's pixels burnt to white; 0.24-0.38: MAE 6.53
MAX_YAW = 20.0  # degrees, as estimated from the eyes (see `yaw_of`); 20-30: MAE 7.09
MAX_ROLL = 60.0  # degrees; alignment levels the eyes: up to 60 (as far as measured) MAE stays 5.1-5.8
CLIPPED_FROM = 247  # grey levels counted as burnt to white
MEASURE_SIDE = 48  # side of the aligned crop the pixel measures are taken on, as when they were derived
FRONTAL_EYES_TO_WIDTH = 0.44  # eye distance / box width of frontal faces (UTKFace median, core.detect.align)
NOSE_DEPTH = 0.55  # nose tip in front of the eyes, in eye distances (adult head proportions)
CONFIRM_BELOW = 0.9  # detection score under which a good face needs a second detector's word (real faces: 0.88-0.94)
MIN_CONFIRMATION = 0.5  # BlazeFace's score for a face in the box's surroundings
CONTEXT = 2.0  # the surroundings: a square this many times the box's longer side, around its centre
ISSUES = ("small", "blurry", "dark", "bright", "turned", "unconfirmed")


@dataclass(frozen=True)
class Quality:
    """The measures of one face and the issues they raise (empty: a good face)."""

    size_px: int
    sharpness: float
    brightness: float
    clipped: float
    yaw: float | None  # None for aligned crops: no detection to measure the pose on
    roll: float | None
    issues: tuple[str, ...] = ()

    @property
    def grade(self) -> str:
        return "poor" if self.issues else "good"

    def columns(self) -> dict:
        """The measures as table columns (the batch CSV's quality columns)."""
        return {"size_px": self.size_px, "sharpness": self.sharpness, "brightness": self.brightness,
                "clipped": self.clipped, "yaw": self.yaw, "roll": self.roll, "quality": self.grade,
                "quality_issues": ";".join(self.issues)}


# The quality columns of an output row (`Quality.columns`), with their types.
QUALITY_COLUMN_TYPES: dict[str, type] = {"size_px": int, "sharpness": float, "brightness": float, "clipped": float,
                                         "yaw": float, "roll": float, "quality": str, "quality_issues": str}


def crop_measures(crop: np.ndarray) -> tuple[float, float, float]:
    """(sharpness, brightness, share burnt to white) of an RGB uint8 crop. Under-exposure shows
    in the mean (dark crops keep detail in the blacks' JPEG noise), over-exposure in the clipping
    (a bright face can have an ordinary mean)."""
    grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)
    sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    clipped = float((grey >= CLIPPED_FROM).mean())
    return sharpness, float(grey.mean()), clipped


def size_of(face: Face | None, shape: tuple, scale: float = 1.0) -> int:
    """Side of the face's aligned crop in the original photo's pixels: how much detail the model's
    input was made from (for an aligned crop, the crop's own side)."""
    if face is None:
        return round(min(shape[:2]) * scale)
    return round(scale / math.hypot(*alignment_matrix(face, 1)[:, 0]))


def roll_of(face: Face) -> float:
    """Tilt of the eye line, degrees (positive: clockwise in the image)."""
    (x0, y0), (x1, y1) = face.left_eye, face.right_eye
    return math.degrees(math.atan2(y1 - y0, x1 - x0))


def yaw_of(face: Face) -> float:
    """Rough head turn, degrees. With five landmarks (YuNet: eyes, nose, mouth corners): from how
    far the nose tip sits beside the eyes' midpoint, signed. With eyes only (BlazeFace): from how
    much narrower the eyes are than on a frontal face of that box width, unsigned."""
    eyes = np.array([face.left_eye, face.right_eye])
    landmarks = getattr(face, "landmarks", None)
    axis = eyes[1] - eyes[0]
    distance = float(np.hypot(*axis))
    if landmarks is not None and len(landmarks) >= 3:
        offset = float(np.dot(np.asarray(landmarks[2]) - eyes.mean(axis=0), axis / distance)) / distance
        return math.degrees(math.atan(offset / NOSE_DEPTH))
    return math.degrees(math.acos(min(1.0, distance / (FRONTAL_EYES_TO_WIDTH * face.w))))


def issues_of(size_px: int, sharpness: float, brightness: float, clipped: float,
              yaw: float | None, roll: float | None, confirmed: bool = True) -> tuple[str, ...]:
    checks = {"small": size_px < MIN_SIZE_PX, "blurry": sharpness < MIN_SHARPNESS,
              "dark": brightness < MIN_BRIGHTNESS, "bright": clipped > MAX_CLIPPED,
              "turned": (yaw is not None and abs(yaw) > MAX_YAW) or (roll is not None and abs(roll) > MAX_ROLL),
              "unconfirmed": not confirmed}
    return tuple(issue for issue in ISSUES if checks[issue])


@functools.cache
def _second_opinion() -> BlazeFaceDetector:
    """The confirming detector, built once per process (its `detect` is thread-safe)."""
    return BlazeFaceDetector(min_score=MIN_CONFIRMATION, full_range="never")


def confirmed(face: Face, image: np.ndarray) -> bool:
    """Whether a second detector finds a face in the surroundings of `face` (see the module's doc)."""
    cx, cy, side = face.x + face.w / 2, face.y + face.h / 2, CONTEXT * max(face.w, face.h)
    x0, y0 = max(0, round(cx - side / 2)), max(0, round(cy - side / 2))
    around = image[y0:max(y0, round(cy + side / 2)), x0:max(x0, round(cx + side / 2))]
    return min(around.shape[:2]) >= 8 and bool(_second_opinion().detect(np.ascontiguousarray(around)))


def measure(face: Face | None, crop: np.ndarray, shape: tuple, scale: float = 1.0,
            image: np.ndarray | None = None) -> Quality:
    """The quality of a face (None: the whole image is an aligned crop) from its model crop;
    `shape` is the analysed image's, `scale` maps its pixels to the original photo's. With the
    `image` the face was found in, an otherwise good face of a low detection score is confirmed
    by a second detector (see the module's doc)."""
    sharpness, brightness, clipped = crop_measures(crop)
    size = size_of(face, shape, scale)
    yaw, roll = (None, None) if face is None else (round(yaw_of(face), 1), round(roll_of(face), 1))
    values = dict(size_px=size, sharpness=round(sharpness, 1), brightness=round(brightness, 1),
                  clipped=round(clipped, 3), yaw=yaw, roll=roll)
    issues = issues_of(**values)
    if not issues and face is not None and image is not None and face.score < CONFIRM_BELOW:
        issues = issues_of(**values, confirmed=confirmed(face, image))
    return Quality(**values, issues=issues)
