"""Pixel arrays as the pipeline wants them: RGB uint8, and resized without aliasing.

Images are HxWx3 RGB uint8 arrays everywhere past decoding (`core.imaging.files`); these helpers
turn other arrays into that and resize them, once for detection, alignment, training and drawing.
"""
from __future__ import annotations

import cv2
import numpy as np


def as_rgb_uint8(image) -> np.ndarray | None:
    """The image as HxWx3 uint8 (gray and RGBA converted, other dtypes clipped), or None when it
    cannot hold a face (empty, 1-D, fewer than 2 pixels a side, odd channel counts)."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[0] < 2 or array.shape[1] < 2 or array.shape[2] not in (1, 3, 4):
        return None
    if array.dtype != np.uint8:
        array = np.clip(np.nan_to_num(array), 0, 255).astype(np.uint8)
    if array.shape[2] == 1:
        return np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array[:, :, :3])


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize an RGB image to size x size (area filter when shrinking, which avoids aliasing)."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    shrinking = image.shape[0] > size or image.shape[1] > size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def gray_to_rgb(pixels: np.ndarray) -> np.ndarray:
    """A 2-D grayscale array (e.g. the 48x48 CSV format) as an RGB uint8 image."""
    gray = np.clip(pixels, 0, 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


def fit_within(image: np.ndarray, side: int) -> np.ndarray:
    """The image resized so its longer side is `side`, keeping its aspect ratio; area-filtered
    when shrinking, by a whole factor first because OpenCV's area filter is slow otherwise, and
    that by 2x2 halvings while it is even (SIMD there: for 640x480, about a third of the CPU
    of one shrink by 4, measured on two days as 0.08 against 0.30 and 0.31 against 0.88 ms)."""
    height, width = image.shape[:2]
    longer = max(height, width)
    size = (max(1, round(width * side / longer)), max(1, round(height * side / longer)))
    factor = min(longer // side, height, width)
    while factor >= 2 and factor % 2 == 0:
        image = cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        factor //= 2
    if factor >= 2:
        image = cv2.resize(image, None, fx=1 / factor, fy=1 / factor, interpolation=cv2.INTER_AREA)
    if (image.shape[1], image.shape[0]) == size:
        return image
    shrinking = image.shape[0] > size[1] or image.shape[1] > size[0]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
