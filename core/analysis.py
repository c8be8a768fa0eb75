"""The one face-analysis pipeline: find faces, align them, read age and gender, as `FaceResult`s.

`FaceAnalyzer` composes a face detector and a `Predictor` (both loaded once per process by the
caller and passed in). `analyze` does a whole photo; its three steps (`detect`, `align`,
`predict`) are public so that batch analysis can run detection in parallel threads and batch the
model calls across photos, and live video can track faces between detections, while all of them
produce the same results for the same image. Drawing is `core.drawing.draw_faces`.

Each result also says how far to trust it: a calibrated age range (`core.calibration`), the
gender's confidence, the face's quality (`core.quality`) and, as `AnswerSettings` ask, abstention
on poor faces and an age check. `face_result` is the one place these are decided.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Protocol, Sequence, Union

import numpy as np

from .calibration import age_check
from .config import QUALITY_GRADES, AnswerSettings
from .faces import Face, align_face, build_detector, fit_within
from .geometry import as_rgb_uint8
from .images import ImageError, ImageSource, decode_image, resize_square
from .inference import GenderReadout, Prediction, Predictor
from .quality import QUALITY_COLUMNS, Quality, measure as measure_quality

DEFAULT_ANSWERS = AnswerSettings()
WORK_SIDE = 1600  # photos are analysed at most this large: plenty for faces, bounded in memory
Photo = Union[ImageSource, np.ndarray]


class Detector(Protocol):
    """What the pipeline needs of a face detector (`core.faces.build_detector` makes them)."""

    def detect(self, image: np.ndarray, min_score: float | None = None) -> list[Face]: ...


# Which detector serves which use, with which options: YuNet finds turned, small and masked faces
# in photos (AFW recall 99.4 % vs BlazeFace's 71 %, bench/detection.py) and, at a larger working
# size, the small faces of group photos; live video keeps BlazeFace's short-range model, three
# times cheaper per frame, for the near, mostly frontal faces in front of a webcam.
DETECTOR_FOR = {"photos": ("yunet", {}), "group photos": ("yunet", {"work_side": 1920}),
                "live": ("blazeface", {"full_range": "never"})}


def detector_for(use: str = "photos") -> Detector:
    """A new detector for one of the uses in DETECTOR_FOR (build it once, share it)."""
    name, options = DETECTOR_FOR[use]
    return build_detector(name, **options)


@dataclass(frozen=True)
class FaceResult(GenderReadout):
    """One face in a photo or frame: where it is and what the model says about it.

    `number` counts faces from 1 in the order they are reported (by detection score; in live
    video, the track's number) and is drawn on the face's box, so tables and pictures agree.
    `age` is rounded to 0.1 year once, here; `age_years` is the whole number shown to people.
    `age_low`..`age_high` (whole years, inclusive) holds the true age with the calibrated
    coverage asked for (None when the model has no calibration); `quality` holds the face's
    measures and issues; `status` is "uncertain" when the face is below the quality asked for
    (the numbers stay, for reference, but should not be relied on); `age_check` is the answer
    to an age threshold when one was asked for (see `face_result`)."""

    number: int
    x: int
    y: int
    w: int
    h: int
    det_score: float | None  # None for crops taken as already aligned
    left_eye: tuple[float, float] | None  # the eye on the image's left side, image pixels
    right_eye: tuple[float, float] | None
    age: float
    p_female: float
    age_low: int | None = None
    age_high: int | None = None
    quality: Quality | None = None
    status: str = "ok"
    age_threshold: float | None = None
    age_check: str | None = None

    @property
    def age_years(self) -> int:
        """The age as people read it: `age` rounded half up (31.5 -> 32), the same everywhere."""
        return int(math.floor(self.age + 0.5))

    @property
    def age_text(self) -> str:
        """"25-31" when there is an interval, else the point age "28"."""
        return str(self.age_years) if self.age_low is None else f"{self.age_low}-{self.age_high}"

    def label(self, show_probability: bool = False) -> str:
        """"1 female, 25-31" (with the gender's probability when asked), the age check when one
        was asked for ("18+", "<18", "18?") and, for a poor face, its issues ("poor: blurry"):
        the text drawn on the box and shown under crops, on every page."""
        certainty = f" {self.gender_confidence:.0%}" if show_probability else ""
        parts = [f"{self.number} {self.gender}{certainty}, {self.age_text}"]
        if self.age_check is not None:
            threshold = f"{self.age_threshold:g}"
            parts.append({"over": f"{threshold}+", "under": f"<{threshold}"}.get(self.age_check, f"{threshold}?"))
        if self.quality is not None and self.quality.issues:
            parts.append(("uncertain: " if self.status == "uncertain" else "poor: ") + ",".join(self.quality.issues))
        return " | ".join(parts)

    def row(self) -> dict:
        """The face as a table row (the batch CSV's face columns)."""
        # a shallow copy: `asdict` would deep-copy the quality measures only for them to be dropped
        values = {field.name: getattr(self, field.name) for field in fields(self)
                  if field.name not in ("left_eye", "right_eye", "quality")}
        values["face"] = values.pop("number")
        quality = self.quality.columns() if self.quality is not None else dict.fromkeys(QUALITY_COLUMNS)
        return {**values, "gender": self.gender, "gender_confidence": round(self.gender_confidence, 4), **quality}


def face_result(number: int, face: Face | None, prediction: Prediction, shape: tuple, scale: float = 1.0,
                quality: Quality | None = None, answers: AnswerSettings = DEFAULT_ANSWERS) -> FaceResult:
    """The result for a detected face (or, with `face=None`, for a whole aligned crop of `shape`),
    in the pixels of the original image, which is `scale` times the analysed one.

    `answers` decides the rest: a face below `min_quality` gets status "uncertain"; with an
    `age_threshold` T, `age_check` is "over" when the whole interval is at or above T, "under"
    when it is below, "uncertain" when it straddles T, the face is uncertain, or there is no
    interval (an uncalibrated model's point age alone is no basis for a decision)."""
    age, p_female = round(float(prediction.age), 1), round(float(prediction.p_female), 4)
    poor = quality is not None and QUALITY_GRADES.index(quality.grade) < QUALITY_GRADES.index(answers.min_quality)
    status = "uncertain" if poor else "ok"
    check = None if answers.age_threshold is None else age_check(
        None if poor else prediction.age_low, None if poor else prediction.age_high, answers.age_threshold)
    trust = dict(age_low=prediction.age_low, age_high=prediction.age_high, quality=quality, status=status,
                 age_threshold=answers.age_threshold, age_check=check)
    if face is None:
        height, width = (round(side * scale) for side in shape[:2])
        return FaceResult(number, 0, 0, width, height, None, None, None, age, p_female, **trust)
    eye = lambda point: (round(point[0] * scale, 1), round(point[1] * scale, 1))  # noqa: E731
    return FaceResult(number, round(face.x * scale), round(face.y * scale), round(face.w * scale),
                      round(face.h * scale), round(face.score, 3), eye(face.left_eye), eye(face.right_eye),
                      age, p_female, **trust)


def load_photo(source: Photo) -> tuple[np.ndarray, float]:
    """A photo ready for analysis, at most WORK_SIDE large, and the factor from its pixels to the
    original's. JPEGs are decoded at reduced size when large (fast, and memory stays bounded).
    Every entry point (CLI, batch, pages) loads photos here, so they all see the same pixels."""
    if isinstance(source, np.ndarray):
        image = as_rgb_uint8(source)
        if image is None:
            raise ImageError(f"not an image array (shape {source.shape}, dtype {source.dtype})")
        original_side = max(image.shape[:2])
    else:
        image, original_side = decode_image(source, max_side=WORK_SIDE // 2)
    if max(image.shape[:2]) > WORK_SIDE:
        image = fit_within(image, WORK_SIDE)
    return image, original_side / max(image.shape[:2])


class FaceAnalyzer:
    """Detector + model, reporting as `answers` say. Without a detector, every image is taken
    as one aligned face crop (e.g. UTKFace). Thread-safe: both parts are."""

    def __init__(self, predictor: Predictor, detector: Detector | None = None,
                 answers: AnswerSettings = DEFAULT_ANSWERS):
        self.predictor = predictor
        self.detector = detector
        self.answers = answers

    def with_answers(self, answers: AnswerSettings) -> "FaceAnalyzer":
        """The same detector and model, reporting with other answer settings (costs nothing)."""
        return FaceAnalyzer(self.predictor, self.detector, answers)

    @property
    def aligned(self) -> bool:
        return self.detector is None

    def detect(self, image: np.ndarray, min_score: float | None = None) -> list[Face | None]:
        """The faces to read, best first; `[None]` (the whole image) when inputs are aligned crops."""
        return [None] if self.aligned else self.detector.detect(image, min_score)

    def align(self, image: np.ndarray, faces: Sequence[Face | None]) -> np.ndarray:
        """The model's input batch: one aligned crop per face."""
        size = self.predictor.image_size
        batch = np.empty((len(faces), size, size, 3), np.uint8)
        for i, face in enumerate(faces):
            batch[i] = resize_square(image, size) if face is None else align_face(image, face, size)
        return batch

    def predict(self, crops: np.ndarray) -> list[Prediction]:
        """The model's answers for aligned crops, with age intervals at `answers.interval`."""
        dist, p_female = self.predictor.predict_distributions(crops)
        ages = self.predictor.expected_ages(dist)
        bounds = self.predictor.age_intervals(dist, self.answers.interval)
        low, high = bounds if bounds is not None else ([None] * len(ages),) * 2
        return [Prediction(float(a), float(p), None if lo is None else int(lo), None if hi is None else int(hi))
                for a, p, lo, hi in zip(ages, p_female, low, high)]

    @staticmethod
    def measure(faces: Sequence[Face | None], crops: np.ndarray, shape: tuple, scale: float = 1.0) -> list[Quality]:
        """The quality of each face from its crop (see `core.quality`)."""
        return [measure_quality(face, crop, shape, scale) for face, crop in zip(faces, crops)]

    def result(self, number: int, face: Face | None, prediction: Prediction, quality: Quality | None,
               shape: tuple, scale: float = 1.0) -> FaceResult:
        """`face_result` with this analyzer's answer settings."""
        return face_result(number, face, prediction, shape, scale, quality, self.answers)

    def analyze(self, image: np.ndarray, min_score: float | None = None, scale: float = 1.0) -> list[FaceResult]:
        """Every face of an RGB image, numbered from 1 (boxes scaled by `scale`, see `load_photo`)."""
        faces = self.detect(image, min_score)
        crops = self.align(image, faces)
        return [self.result(i, face, prediction, quality, image.shape, scale) for i, (face, prediction, quality)
                in enumerate(zip(faces, self.predict(crops), self.measure(faces, crops, image.shape, scale)), 1)]

    def analyze_photo(self, source: Photo, min_score: float | None = None) -> list[FaceResult]:
        """`analyze` on a file, encoded bytes or array, loaded as every entry point loads photos."""
        image, scale = load_photo(source)
        return self.analyze(image, min_score, scale)
