"""What real photos do to faces, as functions on RGB uint8 crops: one implementation shared by
the robustness benchmark (bench/robustness.py, on 200 px crops before they are pasted into a
scene) and the training augmentation (`Config.degrade`, on model-sized crops), so the model is
trained on exactly the kinds of damage it is judged on.

Each corruption draws its strength from `rng` within the range a phone or webcam photo shows.
Sizes that describe the scene (blur radius, band height, warp) are fractions of the crop's side
so they mean the same at 200 px and at 48 px; the low-resolution target is in absolute pixels
(a face seen by 24-32 sensor pixels has that little detail whatever it is resized to later).
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

LOW_RES_SIDES = (24, 32)  # the crop's side after downscaling, pixels
BLUR_SIGMA = (0.012, 0.03)  # Gaussian sigma, fraction of the side (2.4-6 px at 200 px)
JPEG_QUALITY = (15, 30)
NOISE_SIGMA = (6.0, 18.0)  # sensor noise, grey levels (0-255)
GAMMA = (1.6, 2.6)  # low light: darker mid-tones, then scaled down
DARKEN = (0.45, 0.75)
CAST_GAIN = (0.75, 1.25)  # per-channel gain of a colour cast
BAND_HEIGHT = (0.12, 0.2)  # occluding band, fraction of the side
EYE_ROW, MOUTH_ROW = 0.42, 0.74  # band centres in a UTKFace-framed crop, fraction of the side
YAW_SQUEEZE = (0.12, 0.25)  # one side of the face shrunk by this fraction (head turned)


def low_resolution(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    side = image.shape[0]
    small = int(rng.integers(LOW_RES_SIDES[0], LOW_RES_SIDES[1] + 1))
    if small >= side:
        return image
    shrunk = cv2.resize(image, (small, small), interpolation=cv2.INTER_AREA)
    return cv2.resize(shrunk, (side, side), interpolation=cv2.INTER_LINEAR)


def blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    sigma = rng.uniform(*BLUR_SIGMA) * image.shape[0]
    return cv2.GaussianBlur(image, (0, 0), sigma)


def jpeg(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
    ok, data = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1] if ok else image


def noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    sigma = rng.uniform(*NOISE_SIGMA)
    return np.clip(image + rng.normal(0.0, sigma, image.shape), 0, 255).astype(np.uint8)


def low_light(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    scaled = (image / 255.0) ** rng.uniform(*GAMMA) * rng.uniform(*DARKEN)
    return np.round(scaled * 255).astype(np.uint8)


def colour_cast(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    gains = rng.uniform(*CAST_GAIN, size=3)
    return np.clip(image * gains, 0, 255).astype(np.uint8)


def grayscale(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)


def _band(image: np.ndarray, rng: np.random.Generator, row: float) -> np.ndarray:
    """A flat band across the face (sunglasses, a scarf, a hand) of a random dark or light shade."""
    side = image.shape[0]
    half = rng.uniform(*BAND_HEIGHT) * side / 2
    centre = (row + rng.uniform(-0.03, 0.03)) * side
    out = image.copy()
    out[max(0, round(centre - half)):round(centre + half)] = rng.integers(0, 256, 3, dtype=np.uint8)
    return out


def eye_band(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return _band(image, rng, EYE_ROW)


def mouth_band(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return _band(image, rng, MOUTH_ROW)


def yaw(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A perspective warp that shrinks one side of the crop, as a head turned 20-35 degrees looks."""
    side = image.shape[0] - 1
    squeeze = rng.uniform(*YAW_SQUEEZE) * side
    source = np.float32([[0, 0], [side, 0], [side, side], [0, side]])  # TL, TR, BR, BL
    top, bottom = (1, 2) if rng.random() < 0.5 else (0, 3)  # the side that turns away
    target = source.copy()
    target[[top, bottom], 0] += -squeeze if top == 1 else squeeze
    target[top, 1] += squeeze / 2
    target[bottom, 1] -= squeeze / 2
    matrix = cv2.getPerspectiveTransform(source, target)
    return cv2.warpPerspective(image, matrix, (side + 1, side + 1), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)


Corruption = Callable[[np.ndarray, np.random.Generator], np.ndarray]
CORRUPTIONS: dict[str, Corruption] = {
    "low_resolution": low_resolution, "blur": blur, "jpeg": jpeg, "noise": noise, "low_light": low_light,
    "colour_cast": colour_cast, "grayscale": grayscale, "eye_band": eye_band, "mouth_band": mouth_band,
    "yaw": yaw,
}
_KINDS = tuple(CORRUPTIONS.values())


def degrade(image: np.ndarray, rng: np.random.Generator, probability: float) -> np.ndarray:
    """Each corruption applied with `probability`, in a random order (training augmentation:
    with 10 kinds and 0.1, about two images in three get at least one)."""
    for index in rng.permutation(len(CORRUPTIONS)):
        if rng.random() < probability:
            image = _KINDS[index](image, rng)
    return image


def degrade_batch(images: np.ndarray, seed: int, probability: float) -> np.ndarray:
    """`degrade` on every image of a uint8-valued batch (n, h, w, 3); float32 out, as the training
    pipeline carries images. The seed comes from the pipeline so parallel batches never share state."""
    rng = np.random.default_rng(seed)
    batch = np.clip(images, 0, 255).astype(np.uint8)
    return np.stack([degrade(image, rng, probability) for image in batch]).astype(np.float32)
