"""The one face-analysis pipeline: find faces, align them, read age and gender, as `FaceResult`s.

`FaceAnalyzer` composes a face detector and a `Predictor` (both loaded once per process by the
caller and passed in). `analyze` does a whole photo; its three steps (`detect`, `align`,
`predict`) are public so that batch analysis can run detection in parallel threads and batch the
model calls across photos, and live video can track faces between detections, while all of them
produce the same results for the same image. Drawing is `core.drawing.draw_faces`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Protocol, Sequence, Union

import numpy as np

from .faces import Face, align_face, build_detector, fit_within
from .geometry import as_rgb_uint8
from .images import ImageError, ImageSource, decode_image, resize_square
from .inference import GenderReadout, Prediction, Predictor

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
    `age` is rounded to 0.1 year once, here; `age_years` is the whole number shown to people."""

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

    @property
    def age_years(self) -> int:
        """The age as people read it: `age` rounded half up (31.5 -> 32), the same everywhere."""
        return int(math.floor(self.age + 0.5))

    def label(self, show_probability: bool = False) -> str:
        """"1 female, 31" (with the gender's probability when asked): the text drawn on the box."""
        certainty = f" {self.gender_confidence:.0%}" if show_probability else ""
        return f"{self.number} {self.gender}{certainty}, {self.age_years}"

    def row(self) -> dict:
        """The face as a table row (the batch CSV's face columns)."""
        values = asdict(self)
        values.pop("left_eye"), values.pop("right_eye")
        values["face"] = values.pop("number")
        return {**values, "gender": self.gender}


def face_result(number: int, face: Face | None, prediction: Prediction, shape: tuple, scale: float = 1.0) -> FaceResult:
    """The result for a detected face (or, with `face=None`, for a whole aligned crop of `shape`),
    in the pixels of the original image, which is `scale` times the analysed one."""
    age, p_female = round(float(prediction.age), 1), round(float(prediction.p_female), 4)
    if face is None:
        height, width = (round(side * scale) for side in shape[:2])
        return FaceResult(number, 0, 0, width, height, None, None, None, age, p_female)
    eye = lambda point: (round(point[0] * scale, 1), round(point[1] * scale, 1))  # noqa: E731
    return FaceResult(number, round(face.x * scale), round(face.y * scale), round(face.w * scale),
                      round(face.h * scale), round(face.score, 3), eye(face.left_eye), eye(face.right_eye),
                      age, p_female)


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
    """Detector + model. Without a detector, every image is taken as one aligned face crop
    (e.g. UTKFace). Thread-safe: both parts are."""

    def __init__(self, predictor: Predictor, detector: Detector | None = None):
        self.predictor = predictor
        self.detector = detector

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
        ages, p_female = self.predictor.predict_arrays(crops)
        return [Prediction(float(a), float(p)) for a, p in zip(ages, p_female)]

    def analyze(self, image: np.ndarray, min_score: float | None = None, scale: float = 1.0) -> list[FaceResult]:
        """Every face of an RGB image, numbered from 1 (boxes scaled by `scale`, see `load_photo`)."""
        faces = self.detect(image, min_score)
        predictions = self.predict(self.align(image, faces))
        return [face_result(i, face, p, image.shape, scale) for i, (face, p) in enumerate(zip(faces, predictions), 1)]

    def analyze_photo(self, source: Photo, min_score: float | None = None) -> list[FaceResult]:
        """`analyze` on a file, encoded bytes or array, loaded as every entry point loads photos."""
        image, scale = load_photo(source)
        return self.analyze(image, min_score, scale)
