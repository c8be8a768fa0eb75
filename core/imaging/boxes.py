"""Box helpers shared by detection, tracking and drawing.

Boxes are numpy arrays of (x0, y0, x1, y1) rows. Each helper exists once so that the detectors,
the video tracker and the batch pipeline agree on what an overlap is.
"""
from __future__ import annotations

import numpy as np


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
