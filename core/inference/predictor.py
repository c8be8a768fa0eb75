"""`Predictor`: age and gender for aligned face crops, from a run folder's model.

Inference runs the LiteRT export (`model.tflite`) that `core.train.model.save_model` writes
beside `model.keras`, so predicting never imports TensorFlow: a CLI prediction starts in well
under a second and a batch stays small in memory. Another `network` can be handed in: the Keras
model itself (`core.train.model.KerasNetwork`, for checking the export; it imports TensorFlow).
Every network shares the pre- and post-processing here (mirror averaging, age expectation), so
two can only differ by their arithmetic.
"""
from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence, Union

import numpy as np

from ..config import DEFAULT_MODEL_DIR
from ..imaging.files import load_image
from ..imaging.pixels import as_rgb_uint8, resize_square
from ..labels import gender_of
from ..quiet import native_stderr_silenced
from ..runs import CALIBRATION_FILE, LITERT_FILE, MODEL_FILE, ModelError, model_folder, read_settings, stamp
from .calibration import load_calibration

Crop = Union[np.ndarray, str, Path, bytes]
Network = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # float32 images -> (age distributions, p_female)


class GenderReadout:
    """The gender and its confidence for anything with a `p_female` (predictions, results)."""

    p_female: float

    @property
    def gender(self) -> str:
        return gender_of(self.p_female)

    @property
    def gender_confidence(self) -> float:
        return max(self.p_female, 1.0 - self.p_female)


class AgeReadout:
    """The age as people read it, for anything with an `age` and an optional range
    `age_low`-`age_high` (predictions, faces, people in a video): one rounding everywhere."""

    age: float
    age_low: int | None
    age_high: int | None

    @property
    def age_years(self) -> int:
        """`age` rounded half up (31.5 -> 32), the same everywhere."""
        return int(math.floor(self.age + 0.5))

    @property
    def age_text(self) -> str:
        """"25-31" when there is a range, else the point age "28"."""
        return str(self.age_years) if self.age_low is None else f"{self.age_low}-{self.age_high}"


@dataclass(frozen=True)
class Prediction(GenderReadout, AgeReadout):
    """The model's answer for one face crop; the age interval (whole years, inclusive) only
    when the model has a calibration (`core.inference.calibration`)."""

    age: float
    p_female: float
    age_low: int | None = None
    age_high: int | None = None


class LiteRtNetwork:
    """The exported network in a LiteRT interpreter. One interpreter is not thread-safe, so
    calls are serialised; each call already uses every core for a batch."""

    def __init__(self, folder: Path, threads: int):
        from ai_edge_litert.interpreter import Interpreter

        path = folder / LITERT_FILE
        if not path.is_file():
            hint = (f"; export it with `python -m core export --model {folder}`"
                    if (folder / MODEL_FILE).is_file() else "")
            raise ModelError(f"no model at {folder} (expected {LITERT_FILE} in that folder{hint})")
        try:
            with native_stderr_silenced():
                interpreter = Interpreter(model_path=str(path), num_threads=threads)
                self._runner = interpreter.get_signature_runner()
                self._lock = threading.Lock()
                self.__call__(np.zeros((1, *interpreter.get_input_details()[0]["shape"][1:]), np.float32))
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load {path}: it is not a usable LiteRT model ({exc})") from exc

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            out = self._runner(image=images)
        return out["age"], out["gender"][:, 0]


class Predictor:
    """Age and gender for aligned face crops (RGB uint8 arrays of any size, or image files).

    Load it once and share it: `predict_arrays` is thread-safe."""

    def __init__(self, model_dir: Union[str, Path] = DEFAULT_MODEL_DIR, batch_size: int = 256,
                 flip_tta: bool | None = None, threads: int | None = None, network: Network | None = None):
        """`flip_tta` overrides the model's setting: averaging each crop with its mirror image is
        slightly more accurate and costs twice the compute. `network` replaces the run's LiteRT
        export (e.g. by its Keras model, to check the export)."""
        self.model_dir = model_folder(model_dir)
        _, self.config = read_settings(self.model_dir)
        self.image_size = self.config.image_size
        self.batch_size = batch_size
        self.flip_tta = self.config.flip_tta if flip_tta is None else flip_tta
        self._ages = np.arange(self.config.max_age + 1, dtype=np.float64)
        self._calibration, self._calibration_version = None, None
        self._net = network or LiteRtNetwork(self.model_dir, threads or os.cpu_count() or 1)

    def prepare(self, crops: Iterable[Crop]) -> np.ndarray:
        """Stack crops into the model's uint8 input batch (decoding files, resizing arrays)."""
        arrays = [crop if isinstance(crop, np.ndarray) else load_image(crop) for crop in crops]
        batch = np.empty((len(arrays), self.image_size, self.image_size, 3), np.uint8)
        for i, array in enumerate(arrays):
            rgb = as_rgb_uint8(array)
            if rgb is None:
                raise ValueError(f"crop {i} is not an image (shape {np.shape(array)})")
            batch[i] = resize_square(rgb, self.image_size)
        return batch

    def predict_arrays(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ages, p_female) for a prepared uint8 batch of shape (n, size, size, 3)."""
        dist, p_female = self.predict_distributions(batch)
        return self.expected_ages(dist).astype(np.float32), p_female

    def predict_distributions(self, batch: np.ndarray, raw: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(age distributions (n, max_age + 1), p_female) for a prepared uint8 batch: the
        distribution is what age intervals are read from, p_female has the calibrated gender
        temperature applied (`core.inference.calibration`; `raw=True`: the network's own, to fit it on)."""
        if len(batch) == 0:
            return np.zeros((0, len(self._ages)), np.float64), np.zeros(0, np.float32)
        dists, p_female = [], []
        for start in range(0, len(batch), self.batch_size):
            dist, p = self._forward(np.asarray(batch[start:start + self.batch_size], np.float32))
            dists.append(dist)
            p_female.append(p)
        p_female = np.concatenate(p_female).astype(np.float32)
        if not raw and self.calibration is not None and self.calibration.gender_temperature != 1.0:
            p_female = self.calibration.tempered(p_female)
        return np.concatenate(dists), p_female

    def expected_ages(self, dist: np.ndarray) -> np.ndarray:
        """The point age of each distribution: its expectation (what the age loss trained)."""
        return dist @ self._ages

    @property
    def calibration(self):
        """The run's age calibration (None when it has none), read again when the file changes:
        `calibrate`, or a training run finishing, may write it while a server holds this Predictor."""
        version = stamp(self.model_dir / CALIBRATION_FILE)
        if version != self._calibration_version:
            self._calibration, self._calibration_version = load_calibration(self.model_dir), version
        return self._calibration

    def age_intervals(self, dist: np.ndarray, coverage: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Calibrated (low, high) ages at `coverage`, or None for an uncalibrated model."""
        return None if self.calibration is None else self.calibration.intervals(dist, coverage)

    def _forward(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Age distributions and p_female; with mirror averaging, image and mirror go in one call."""
        n = len(images)
        if self.flip_tta:
            dist, p_female = self._net(np.concatenate([images, images[:, :, ::-1]]))
            dist, p_female = (dist[:n] + dist[n:]) / 2, (p_female[:n] + p_female[n:]) / 2
        else:
            dist, p_female = self._net(images)
        return dist.astype(np.float64), p_female

    def predict(self, crops: Sequence[Crop]) -> list[Prediction]:
        """Predictions for crops given as arrays (RGB uint8) or image paths/bytes, in order."""
        ages, p_female = self.predict_arrays(self.prepare(crops))
        return [Prediction(float(a), float(p)) for a, p in zip(ages, p_female)]

    def predict_one(self, crop: Crop) -> Prediction:
        return self.predict([crop])[0]
