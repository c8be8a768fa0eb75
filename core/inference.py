"""`Predictor`: owns a loaded model and its preprocessing, predicts age and gender for face crops.

Load it once (it costs a model load) and call it many times: the forward pass is one traced
`tf.function` with a fixed input signature, so batches of any length reuse the same graph.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence, Union

import numpy as np

from .config import DEFAULT_MODEL_DIR, GENDERS
from .images import load_image, resize_square
from .model import load_model

Crop = Union[np.ndarray, str, Path, bytes]


@dataclass(frozen=True)
class Prediction:
    age: float
    p_female: float

    @property
    def gender(self) -> str:
        return GENDERS[int(self.p_female >= 0.5)]

    @property
    def gender_confidence(self) -> float:
        return max(self.p_female, 1.0 - self.p_female)


class Predictor:
    """Age and gender for aligned face crops (RGB uint8 arrays of any size, or image files)."""

    def __init__(self, model_dir: Union[str, Path] = DEFAULT_MODEL_DIR, batch_size: int = 256,
                 flip_tta: bool | None = None):
        """`flip_tta` overrides the model's setting: averaging each crop with its mirror image is
        slightly more accurate and costs twice the compute."""
        import tensorflow as tf

        self.model_dir = Path(model_dir)
        self.model, self.config = load_model(self.model_dir)
        self.image_size = self.config.image_size
        self.batch_size = batch_size
        self.flip_tta = self.config.flip_tta if flip_tta is None else flip_tta
        ages = tf.range(self.config.max_age + 1, dtype=tf.float32)
        model, flip = self.model, self.flip_tta

        @tf.function(input_signature=[tf.TensorSpec([None, self.image_size, self.image_size, 3], tf.uint8)],
                     reduce_retracing=True)
        def forward(images):
            x = tf.cast(images, tf.float32)
            if flip:  # the image and its mirror in one batch, predictions averaged
                n = tf.shape(x)[0]
                out = model(tf.concat([x, tf.reverse(x, axis=[2])], axis=0), training=False)
                p_female = (out["gender"][:n, 0] + out["gender"][n:, 0]) / 2
                dist = (out["age"][:n] + out["age"][n:]) / 2
            else:
                out = model(x, training=False)
                p_female, dist = out["gender"][:, 0], out["age"]
            return tf.linalg.matvec(dist, ages), p_female

        self._forward = forward

    def prepare(self, crops: Iterable[Crop]) -> np.ndarray:
        """Stack crops into the model's uint8 input batch (decoding files, resizing arrays)."""
        arrays = [crop if isinstance(crop, np.ndarray) else load_image(crop) for crop in crops]
        batch = np.empty((len(arrays), self.image_size, self.image_size, 3), np.uint8)
        for i, array in enumerate(arrays):
            batch[i] = resize_square(_as_rgb(array), self.image_size)
        return batch

    def predict_arrays(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ages, p_female) for a prepared uint8 batch of shape (n, size, size, 3)."""
        if len(batch) == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        ages, p_female = [], []
        for start in range(0, len(batch), self.batch_size):
            age, p = self._forward(batch[start:start + self.batch_size])
            ages.append(age.numpy())
            p_female.append(p.numpy())
        return np.concatenate(ages), np.concatenate(p_female)

    def predict(self, crops: Sequence[Crop]) -> list[Prediction]:
        """Predictions for crops given as arrays (RGB uint8) or image paths/bytes, in order."""
        ages, p_female = self.predict_arrays(self.prepare(crops))
        return [Prediction(float(a), float(p)) for a, p in zip(ages, p_female)]

    def predict_one(self, crop: Crop) -> Prediction:
        return self.predict([crop])[0]


def _as_rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2).astype(np.uint8)
    if array.shape[2] == 4:
        return np.ascontiguousarray(array[:, :, :3])
    return array.astype(np.uint8, copy=False)


