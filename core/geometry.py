"""Box and pixel helpers shared by detection, tracking, alignment and drawing.

Boxes are numpy arrays of (x0, y0, x1, y1) rows; images are HxWx3 RGB uint8 arrays. Each helper
exists once so that the detector, the live tracker and the batch pipeline agree on what an
overlap or a usable image is.
"""
from __future__ import annotations

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


def area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection areas of boxes a (n, 4) and b (m, 4): (n, m)."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    return np.clip(bottom_right - top_left, 0, None).prod(axis=2)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union of boxes a (n, 4) and b (m, 4): (n, m); 0 for empty boxes."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    inter = intersection(a, b)
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
