"""A detected face and what every detector does with its detections alike.

`Face` is the one face type of the project (box, score, eyes and, from YuNet, five landmarks).
`faces_from_points` turns a detector's raw boxes and points into faces, `distinct_faces` drops a
face found twice (by two passes or two models): both detectors share them, so they clip, order
and deduplicate faces the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..imaging.boxes import area, intersection, iou

SAME_FACE_IOU = 0.3  # boxes overlapping this much are one face (MediaPipe's and OpenCV's NMS value)
NESTED_SHARE = 0.6  # a box this much inside a larger one is part of that face


@dataclass(frozen=True)
class Face:
    """One detected face, in the pixel coordinates of the image it was found in."""

    x: int
    y: int
    w: int
    h: int
    score: float
    left_eye: tuple[float, float]  # the eye on the image's left side
    right_eye: tuple[float, float]
    # YuNet's five points in its order: right eye, left eye (the person's: image left and right
    # for an upright face), nose tip, right and left mouth corner. None from BlazeFace, whose
    # faces are aligned by their eyes alone. Last, so positional constructors keep working.
    landmarks: tuple[tuple[float, float], ...] | None = None



def distinct_faces(faces: list[Face]) -> list[Face]:
    """Faces (best first) without later ones that are the same face again: found by both
    models, or two detections that refined onto one face."""
    kept: list[Face] = []
    for face in faces:
        if not kept or not same_face(face_boxes([face]), face_boxes(kept)).any():
            kept.append(face)
    return kept



def same_face(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(n, m) whether boxes overlap like NMS duplicates or one lies mostly inside the other."""
    smaller = np.minimum(area(boxes)[:, None], area(others)[None, :])
    return (iou(boxes, others) > SAME_FACE_IOU) | (intersection(boxes, others) > NESTED_SHARE * smaller)



def face_boxes(faces: list[Face]) -> np.ndarray:
    return np.array([[f.x, f.y, f.x + f.w, f.y + f.h] for f in faces], np.float64)



def faces_from_points(boxes: np.ndarray, points: np.ndarray, scores: np.ndarray, shape: tuple,
              landmarks: bool = False) -> list[Face]:
    """Faces with integer boxes clipped to the image; faces outside it or with both eyes on one
    pixel (which no alignment can use) are dropped. Points 0 and 1 are the eyes (both detectors
    emit the person's right eye first); with `landmarks` all points are kept on the face."""
    height, width = shape[:2]
    faces = []
    for box, face_points, score in zip(boxes, points, scores):
        x0, x1 = np.clip(np.round(box[[0, 2]]), 0, width).astype(int)
        y0, y1 = np.clip(np.round(box[[1, 3]]), 0, height).astype(int)
        eyes = face_points[:2]
        if x1 - x0 >= 1 and y1 - y0 >= 1 and np.hypot(*(eyes[1] - eyes[0])) >= 1:
            kept = tuple((float(x), float(y)) for x, y in face_points) if landmarks else None
            faces.append(Face(int(x0), int(y0), int(x1 - x0), int(y1 - y0), float(score),
                              (float(eyes[0, 0]), float(eyes[0, 1])), (float(eyes[1, 0]), float(eyes[1, 1])),
                              kept))
    return faces

