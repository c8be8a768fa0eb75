"""The one face-analysis pipeline: find faces, align them, read age and gender, as `FaceResult`s.

Two steps, so that every entry point runs the same code in the way that suits it:
- `FaceFinder.find` (per photo): decode, detect, align and measure each face's quality. Batch
  runs it on threads, Ray on workers, evaluation and training's realignment on their photos.
- `FaceAnalyzer.read` (per group of photos): one batched model call for all their faces, then
  each face's answers (`core.analysis.results.face_result`).
`FaceAnalyzer.analyze_photo` is both for one photo. Live video calls the finer steps (`detect`,
`views`, `predict`, `measure`) itself, because it tracks faces between detections. Detectors and
the model are loaded once by the caller and passed in; everything here is thread-safe.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np

from ..config import AnswerSettings
from ..detect import Detector
from ..detect.align import align_face_sizes
from ..detect.face import Face
from ..imaging.files import ImageError, ImageSource, decode_image
from ..imaging.pixels import as_rgb_uint8, fit_within, resize_square
from ..inference.predictor import Prediction, Predictor
from .quality import MEASURE_SIDE, Quality
from .quality import measure as measure_quality
from .results import DEFAULT_ANSWERS, FaceResult, face_result

WORK_SIDE = 1600  # photos are analysed at most this large: plenty for faces, bounded in memory
Photo = Union[ImageSource, np.ndarray]


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


@dataclass(frozen=True)
class FoundFaces:
    """A photo's faces after the per-photo step: the faces (best first; `None` is a whole image
    taken as an aligned crop), their aligned crops, their quality, and the analysed image's
    shape and scale (original pixels per analysed pixel), which place the boxes."""

    faces: list[Face | None]
    crops: np.ndarray
    qualities: list[Quality]
    shape: tuple
    scale: float = 1.0


class FaceFinder:
    """Detector + aligner: where the faces of a photo are and what the model will see of them.
    Without a detector, every image is taken as one aligned face crop (e.g. UTKFace)."""

    def __init__(self, detector: Detector | None, crop_size: int):
        self.detector = detector
        self.crop_size = crop_size

    @property
    def aligned(self) -> bool:
        return self.detector is None

    def detect(self, image: np.ndarray, min_score: float | None = None) -> list[Face | None]:
        """The faces to read, best first; `[None]` (the whole image) when inputs are aligned crops."""
        return [None] if self.aligned else self.detector.detect(image, min_score)

    def align(self, image: np.ndarray, faces: Sequence[Face | None]) -> np.ndarray:
        """The model's input batch: one aligned crop per face."""
        return self._crops(image, faces, (self.crop_size,))[0]

    def views(self, image: np.ndarray, faces: Sequence[Face | None]) -> tuple[np.ndarray, np.ndarray]:
        """The model's input batch and the crops quality is measured on (MEASURE_SIDE px, the
        side its thresholds were set at; the same array when the model's input has that side),
        both from one warp per face."""
        batches = self._crops(image, faces, tuple(dict.fromkeys((self.crop_size, MEASURE_SIDE))))
        return batches[0], batches[-1]

    @staticmethod
    def _crops(image: np.ndarray, faces: Sequence[Face | None], sizes: tuple[int, ...]) -> list[np.ndarray]:
        """One batch per size, each face aligned once for all of them."""
        batches = [np.empty((len(faces), size, size, 3), np.uint8) for size in sizes]
        for i, face in enumerate(faces):
            crops = ([resize_square(image, size) for size in sizes] if face is None
                     else align_face_sizes(image, face, sizes))
            for batch, crop in zip(batches, crops):
                batch[i] = crop
        return batches

    @staticmethod
    def measure(faces: Sequence[Face | None], measured: np.ndarray, image: np.ndarray, scale: float = 1.0,
                confirm: bool = True) -> list[Quality]:
        """The quality of each face (see `core.analysis.quality`) from its `measured` crop (the
        second of `views`); with `confirm`, faces the detector was unsure of are confirmed by a
        second detector."""
        return [measure_quality(face, crop, image.shape, scale, image if confirm else None)
                for face, crop in zip(faces, measured)]

    def find_in(self, image: np.ndarray, scale: float = 1.0, min_score: float | None = None) -> FoundFaces:
        """The per-photo step on a loaded image (see `load_photo` for `scale`)."""
        faces = self.detect(image, min_score)
        crops, measured = self.views(image, faces)
        return FoundFaces(faces, crops, self.measure(faces, measured, image, scale), image.shape, scale)

    def find(self, source: Photo, min_score: float | None = None) -> FoundFaces:
        """The per-photo step on a file, encoded bytes or array, loaded as every entry point loads
        photos; raises `ImageError` for what cannot be read as an image."""
        image, scale = load_photo(source)
        return self.find_in(image, scale, min_score)


class FaceAnalyzer(FaceFinder):
    """Detector + model, reporting as `answers` say. Thread-safe: both parts are."""

    def __init__(self, predictor: Predictor, detector: Detector | None = None,
                 answers: AnswerSettings = DEFAULT_ANSWERS):
        super().__init__(detector, predictor.image_size)
        self.predictor = predictor
        self.answers = answers

    def with_answers(self, answers: AnswerSettings) -> "FaceAnalyzer":
        """The same detector and model, reporting with other answer settings (costs nothing)."""
        return FaceAnalyzer(self.predictor, self.detector, answers)

    def predict(self, crops: np.ndarray) -> list[Prediction]:
        """The model's answers for aligned crops, with age intervals at `answers.interval`."""
        dist, p_female = self.predictor.predict_distributions(crops)
        ages = self.predictor.expected_ages(dist)
        bounds = self.predictor.age_intervals(dist, self.answers.interval)
        low, high = bounds if bounds is not None else ([None] * len(ages),) * 2
        return [Prediction(float(a), float(p), None if lo is None else int(lo), None if hi is None else int(hi))
                for a, p, lo, hi in zip(ages, p_female, low, high)]

    def result(self, number: int, face: Face | None, prediction: Prediction, quality: Quality | None,
               shape: tuple, scale: float = 1.0) -> FaceResult:
        """`face_result` with this analyzer's answer settings."""
        return face_result(number, face, prediction, shape, scale, quality, self.answers)

    def read(self, photos: Sequence[FoundFaces]) -> list[list[FaceResult]]:
        """The batched model step: each photo's results (faces numbered from 1), all their faces
        read by one model call."""
        crops = [found.crops for found in photos if found.faces]
        predictions = iter(self.predict(np.concatenate(crops)) if crops else [])
        return [[self.result(number, face, next(predictions), quality, found.shape, found.scale)
                 for number, (face, quality) in enumerate(zip(found.faces, found.qualities), 1)]
                for found in photos]

    def analyze(self, image: np.ndarray, min_score: float | None = None, scale: float = 1.0) -> list[FaceResult]:
        """Every face of a loaded RGB image (boxes scaled by `scale`, see `load_photo`)."""
        return self.read([self.find_in(image, scale, min_score)])[0]

    def analyze_photo(self, source: Photo, min_score: float | None = None) -> list[FaceResult]:
        """Every face of a file, encoded bytes or array, loaded as every entry point loads photos."""
        return self.read([self.find(source, min_score)])[0]
