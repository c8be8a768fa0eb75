"""YuNet face detector: OpenCV Zoo's 2023mar model, run by LiteRT (XNNPACK) from a float32
export of the shipped ONNX (tools/yunet_to_litert.py), with the decoding and NMS of OpenCV's
`cv2.FaceDetectorYN` re-done here in numpy. The same network under LiteRT takes about half the
time of OpenCV's DNN (7.4 against 13.7 ms for a 640x480 photo on one core), and the detector is
most of a batch photo's cost; tests/test_yunet.py checks the faces agree with OpenCV's.

Why it replaces BlazeFace for photos: it finds faces turned far from the camera and small ones
that the BlazeFace pipeline misses (bench/detection.py has the figures), at a cost that still
allows tens of photos per second on two cores. The weights ship in core/detect/weights/ (MIT, see
NOTICE.md there), so nothing is downloaded at run time.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from ..imaging.pixels import as_rgb_uint8, fit_within
from ..quiet import native_stderr_silenced
from .align import CROP_SIZE, YUNET_TEMPLATE, align_face, alignment_matrix
from .face import Face, distinct_faces, faces_from_points

ONNX_WEIGHTS = Path(__file__).resolve().parent / "weights" / "face_detection_yunet_2023mar_int8bq.onnx"
LITERT_WEIGHTS = ONNX_WEIGHTS.with_name("face_detection_yunet_2023mar.tflite")  # made from the ONNX
STRIDES = (8, 16, 32)  # the network's three grids; inputs are padded to a multiple of the last
# False faces per generated 640x480 face-free photo (`bench/detection.py --sweep`, 350 images):
# 0.13 at score 0.4, 0.029 at 0.5, 0.011 at 0.55, 0.006 at 0.6. The lowest threshold under a fifth
# of the 0.05 target, as generated clutter is easier than real photos' (held-out set: 0.013).
MIN_SCORE = 0.6
# Larger images are shrunk to this longer side. UTKFace crops pasted into 1920x1080 scenes, faces
# ~38 px: found 40/40 at 1280, 30/40 at 960, 2/40 at 640 (~27 px: 29, 7, 0); a pass costs about
# 65, 29 and 19 ms there under OpenCV's DNN (about half that under LiteRT). 1280 keeps faces
# from ~32 px findable in 1080p photos.
WORK_SIDE = 1280
_NMS_IOU = 0.3  # OpenCV's default for YuNet
_TOP_K = 5000  # candidates kept before NMS (OpenCV's default)
_MIN_SIDE = 10  # YuNet finds faces from about 10 px: a narrower image cannot hold one
_LARGEST_FACE = 300  # px: about the largest face YuNet finds reliably (see detect)
# px, shorter side of the close-up pass (see detect): a quarter of a 640x480 photo, whose 2x2
# area halvings are OpenCV's fastest shrink; faces of 330-640 px in such photos are found as
# often as at 160 px (and 550 px ones 40/40 against 39/40), for 0.5 instead of 1.1 ms
# (shrink and network).
_CLOSE_UP = 120
_NETS_PER_THREAD = 4  # interpreters kept per thread, one per recent input size (see _network)
# px at working size: faces larger than this are taken from the close-up pass even where the
# full-size pass found something there, as it frames none that large whole (see detect)
_UNFRAMED = 450
_IN_PLACE = 0.15  # a face found again on the aligned crop must centre this near the template's


class YuNetDetector:
    """YuNet on RGB uint8 images of any size (gray and RGBA are converted); `detect` is
    thread-safe: a LiteRT interpreter holds its input and output buffers, so every thread gets
    its own, made on first use (a few ms each, the model is 0.26 MB)."""

    def __init__(self, min_score: float = MIN_SCORE, work_side: int = WORK_SIDE):
        try:
            self._model = LITERT_WEIGHTS.read_bytes()
        except OSError as exc:
            raise RuntimeError(f"YuNet weights missing: {LITERT_WEIGHTS}") from exc
        self.min_score = min_score
        self.work_side = work_side
        self._local = threading.local()

    def detect(self, image: np.ndarray, min_score: float | None = None) -> list[Face]:
        """Faces in the image's own pixel coordinates, best score first, each with YuNet's five
        landmarks; [] for empty, tiny or malformed images. `min_score` overrides the
        detector's threshold for this call.

        YuNet was trained on faces of about 10-300 px: on a 640x480 photo it finds a face 330 px
        high 28 times in 30 but one 470 px high only 14 times. So images whose working size can
        hold a face that large get a second pass shrunk to _CLOSE_UP px on the shorter side,
        where even a face filling the frame is a size YuNet knows (and which costs about a
        sixteenth of the first: 0.43 against 6.8 ms at 640x480). Where both passes find a
        face, the full-size detection is kept, being the sharper, except beyond _UNFRAMED px
        (working size): there the full-size pass returns parts of the face (boxes of 480-560
        px scoring 0.63-0.77 on faces filling a 1000x1000 photo, where the close-up finds the
        face at 0.92-0.95), so such close-up faces compete on score and the parts inside them
        go (bench/closeups.py). Then each face's landmarks are measured again on its aligned
        crop (see _remeasured)."""
        rgb = as_rgb_uint8(image)
        if rgb is None:
            return []
        score = self.min_score if min_score is None else min_score
        side = min(max(rgb.shape[:2]), self.work_side)
        faces = self._found(rgb, side, score)
        to_work = side / max(rgb.shape[:2])
        if min(rgb.shape[:2]) * to_work > _LARGEST_FACE:
            close_up = self._found(rgb, round(_CLOSE_UP * max(rgb.shape[:2]) / min(rgb.shape[:2])), score)
            unframed = [face for face in close_up if max(face.w, face.h) * to_work > _UNFRAMED]
            faces = distinct_faces(sorted(faces + unframed, key=lambda face: -face.score) + close_up)
        return sorted((self._remeasured(rgb, face, score) for face in faces), key=lambda face: -face.score)

    def _remeasured(self, rgb: np.ndarray, face: Face, min_score: float) -> Face:
        """The face with the landmarks YuNet finds on its own aligned CROP_SIZE crop, mapped
        back to the image. The template was measured on UTKFace crops of that size, and YuNet's
        points shift with face size (1-5 px of a 200 px crop between 150 and 300 px faces);
        measured again at the template's size, that bias goes. On bench/pasted.py's 120 faces:
        same predicted gender as on the crop 97.5 % instead of 95.0 %, p90 |age difference|
        4.4 instead of 6.0 years. Once only, like BlazeFace's. The face stays as found when the
        crop shows no face where the template puts one (e.g. some profiles)."""
        matrix = alignment_matrix(face, CROP_SIZE)
        centre = YUNET_TEMPLATE.mean(axis=0) * CROP_SIZE
        for again in self._found(align_face(rgb, face, CROP_SIZE), CROP_SIZE, min_score):
            points = np.array(again.landmarks)
            if np.hypot(*(points.mean(axis=0) - centre)) < _IN_PLACE * CROP_SIZE:
                back = cv2.invertAffineTransform(matrix)
                moved = [(float(x), float(y)) for x, y in points @ back[:, :2].T + back[:, 2]]
                return replace(face, left_eye=moved[0], right_eye=moved[1], landmarks=tuple(moved))
        return face

    def _found(self, rgb: np.ndarray, side: int, min_score: float) -> list[Face]:
        """Faces YuNet finds on the image resized to `side` px on its longer side, mapped back
        to the image's pixels, best first."""
        work = fit_within(rgb, side) if side != max(rgb.shape[:2]) else rgb
        if min(work.shape[:2]) < _MIN_SIDE:
            return []
        found = self._detections(work, min_score)
        if not len(found):
            return []
        found = found[np.argsort(-found[:, 14], kind="stable")]
        # pixel centres: working pixel p covers original pixels (p + 0.5) * scale - 0.5
        scale = np.array([rgb.shape[1] / work.shape[1], rgb.shape[0] / work.shape[0]])
        points = (found[:, 4:14].reshape(-1, 5, 2) + 0.5) * scale - 0.5
        corners = found[:, :4].reshape(-1, 2, 2)
        corners[:, 1] += corners[:, 0]  # x, y, w, h -> x0, y0, x1, y1
        boxes = (corners * scale).reshape(-1, 4)
        return faces_from_points(boxes, points, found[:, 14], rgb.shape, landmarks=True)

    def _detections(self, work: np.ndarray, min_score: float) -> np.ndarray:
        """What cv2.FaceDetectorYN.detect returns for `work`: rows of box (x, y, w, h), five
        landmarks (x, y) and score, after NMS. As there, the image is padded with black to a
        multiple of 32 px at the bottom right, each grid cell's score is sqrt(cls * obj), its
        box centre and landmarks are offsets from the cell in strides, its size exp() strides."""
        height, width = work.shape[:2]
        padded = tuple(-(-side // STRIDES[-1]) * STRIDES[-1] for side in (height, width))
        interpreter, grid, (input_index, output_index) = self._network(padded)
        batch = interpreter.tensor(input_index)()[0]  # written in place: no float copy to set
        batch[:height, :width] = work
        batch[height:], batch[:height, width:] = 0, 0
        del batch  # LiteRT refuses to run while a view of its buffers is alive
        interpreter.invoke()
        cells = interpreter.get_tensor(output_index)[0]
        score = np.sqrt(np.clip(cells[:, 0], 0, 1) * np.clip(cells[:, 1], 0, 1))
        keep = score >= min_score
        cells, (column, row, stride), score = cells[keep], grid[keep].T, score[keep]
        size = np.exp(cells[:, 4:6]) * stride[:, None]
        corner = (np.stack([column, row], 1) + cells[:, 2:4]) * stride[:, None] - size / 2
        points = (cells[:, 6:16].reshape(-1, 5, 2) + np.stack([column, row], 1)[:, None]) * stride[:, None, None]
        found = np.column_stack([corner, size, points.reshape(-1, 10), score])
        if len(found) > 1:  # OpenCV runs NMS on the boxes truncated to whole pixels
            kept = cv2.dnn.NMSBoxes(np.trunc(found[:, :4]).tolist(), score.tolist(), min_score, _NMS_IOU, top_k=_TOP_K)
            found = found[np.asarray(kept, dtype=int).reshape(-1)]
        return found

    def _network(self, size: tuple[int, int]) -> tuple[Interpreter, np.ndarray, tuple[int, int]]:
        """This thread's interpreter for input `size` (h, w), that size's grid: (column, row,
        stride) of every output cell, and the input and output tensor indices. Re-sizing an interpreter re-plans it, which costs more than
        a 200 px detection itself, so each thread keeps one per recent size: photo, close-up pass
        and aligned crops stop trading places. Past _NETS_PER_THREAD sizes the least recently
        used one is re-sized, not a new one made."""
        cache = self._local.__dict__.setdefault("networks", OrderedDict())
        if size in cache:
            cache.move_to_end(size)
            return cache[size]
        with native_stderr_silenced():  # LiteRT announces its CPU delegate on stderr
            if len(cache) < _NETS_PER_THREAD:
                interpreter = Interpreter(model_content=self._model, num_threads=1)
            else:
                interpreter = cache.popitem(last=False)[1][0]
            interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], [1, *size, 3])
            interpreter.allocate_tensors()
        indices = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
        cache[size] = interpreter, _grid(*size), indices
        return cache[size]


def _grid(height: int, width: int) -> np.ndarray:
    """(column, row, stride) of every cell of the network's output, in its order: the stride-8
    grid row by row, then stride 16, then 32."""
    parts = []
    for stride in STRIDES:
        rows, columns = np.divmod(np.arange((height // stride) * (width // stride)), width // stride)
        parts.append(np.stack([columns, rows, np.full_like(rows, stride)], axis=1))
    return np.concatenate(parts).astype(np.float32)
