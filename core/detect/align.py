"""Aligning a detected face the way the training crops are aligned.

A face's landmarks are mapped onto where the same detector puts them on UTKFace's aligned crops
(the templates below), so a face in a photo reaches the model framed like the faces it learned
from. Apart from the detectors: any detector whose faces carry eyes (and optionally YuNet's five
points) is aligned here.
"""
from __future__ import annotations

import cv2
import numpy as np

from .face import Face

# Where BlazeFace (short range) puts the eyes on UTKFace's aligned & cropped images: medians over
# 2,116 crops (every 10th file; 99.1% had a face) area-resized to 128 px, in unit coordinates.
# Mapping detected eyes onto these points reproduces the training crops' framing; the
# detector's own slight tilt (-1.5 degrees median) cancels out that way.
TEMPLATE_LEFT_EYE = (0.2841, 0.2990)
TEMPLATE_RIGHT_EYE = (0.6928, 0.2870)
BLAZEFACE_EYES = np.array([TEMPLATE_LEFT_EYE, TEMPLATE_RIGHT_EYE])
# Where YuNet puts its five landmarks (Face.landmarks order) on the same crops: medians over
# 2,134 of the 2,135 crops (every 10th file) at their own 200 px, in unit coordinates. Its eyes
# sit 5% closer together than BlazeFace's and tilt the other way (+1 degree; BlazeFace -1.5), so
# its faces need their own template to be framed like the training crops.
YUNET_TEMPLATE = np.array([(0.2937, 0.2889), (0.6813, 0.2956), (0.4729, 0.5007),
                           (0.3134, 0.6799), (0.6409, 0.6887)])
CROP_SIZE = 200  # side of a UTKFace crop: faces are warped at this size, as training crops were


def alignment_matrix(face: Face, size: int) -> np.ndarray:
    """2x3 similarity transform taking image pixels to a size x size aligned crop: faces with
    landmarks (YuNet) by a least-squares fit of all five points to YUNET_TEMPLATE, which stays
    sensible when one eye is hidden in a profile (the mouth and nose still give scale and tilt);
    others by their two eyes, mapped exactly onto the BlazeFace template."""
    if face.landmarks is not None:
        return _similarity(np.array(face.landmarks), YUNET_TEMPLATE * size)
    return _similarity(np.array([face.left_eye, face.right_eye]), BLAZEFACE_EYES * size)


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The rotation + uniform scale + shift taking points src (n, 2) closest to dst in least
    squares (exact for n = 2), as a 2x3 matrix; complex numbers make it a one-line fit."""
    z, w = src[:, 0] + 1j * src[:, 1], dst[:, 0] + 1j * dst[:, 1]
    z0, w0 = z - z.mean(), w - w.mean()
    spread = float(np.sum(np.abs(z0) ** 2))
    if spread < 1e-9:
        raise ValueError("face has all its points at the same place")
    a = np.sum(w0 * np.conj(z0)) / spread
    b = w.mean() - a * z.mean()
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def align_face(image: np.ndarray, face: Face, size: int) -> np.ndarray:
    """The face as a size x size RGB crop framed like UTKFace's aligned crops (eyes level).

    It is warped at UTKFace's own 200 px and then area-resized, as training crops were, so small
    model inputs see the same smoothing in photos as in training; faces much larger than that
    are area-shrunk first, since a plain warp would alias them."""
    return align_face_sizes(image, face, (size,))[0]


def align_face_sizes(image: np.ndarray, face: Face, sizes: tuple[int, ...]) -> list[np.ndarray]:
    """`align_face` at several sizes from one warp (e.g. the model's input and the side quality
    is measured at), each exactly as `align_face` makes it."""
    work = max(*sizes, CROP_SIZE)
    matrix = alignment_matrix(face, work)
    image, matrix = _preshrunk(image, matrix, work)
    crop = cv2.warpAffine(image, matrix, (work, work), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    return [crop if work == size else cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA) for size in sizes]


def _preshrunk(image: np.ndarray, matrix: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The part of the image the warp reads, area-shrunk by a whole factor when the warp would
    shrink it 2x or more, with the matrix adjusted to match."""
    factor = int(1 / np.hypot(*matrix[:, 0]))
    if factor < 2:
        return image, matrix
    corners = cv2.transform(np.array([[[0, 0], [size, 0], [0, size], [size, size]]], np.float64),
                            cv2.invertAffineTransform(matrix))[0]
    height, width = image.shape[:2]
    x0, y0 = np.clip(np.floor(corners.min(axis=0)) - factor, 0, [width, height]).astype(int)
    x1, y1 = np.clip(np.ceil(corners.max(axis=0)) + factor, 0, [width, height]).astype(int)
    cols, rows = (x1 - x0) // factor, (y1 - y0) // factor
    if cols < 1 or rows < 1:
        return image, matrix
    region = cv2.resize(image[y0:y0 + rows * factor, x0:x0 + cols * factor], (cols, rows),
                        interpolation=cv2.INTER_AREA)
    # shrunk pixel p covers source pixels factor*p .. factor*p + factor - 1, centred at their mean
    offset = np.array([x0, y0]) + (factor - 1) / 2
    return region, np.hstack([matrix[:, :2] * factor, (matrix[:, :2] @ offset + matrix[:, 2])[:, None]])


