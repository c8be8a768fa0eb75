"""Drawing results on pictures: one look for photos, batch previews and live video.

Each face gets a box in its gender's colour (`core.labels.GENDER_COLOURS`, as in the charts;
grey when it is reported as uncertain) and its `FaceResult.label` ("1 female, 25-31 | poor:
blurry"), whose number is the face's `FaceResult.number`, the one tables and the CSV show.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from ..labels import GENDER_COLOURS
from .results import FaceResult

COLOURS = {gender: tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))  # RGB
           for gender, hex_colour in GENDER_COLOURS.items()}
UNCERTAIN = (170, 170, 170)  # faces reported as uncertain (below the quality asked for)


def draw_faces(image: np.ndarray, results: Sequence[FaceResult], show_probability: bool = False,
               scale: float = 1.0) -> np.ndarray:
    """A copy of an RGB image with every face boxed and labelled. `scale` maps the results'
    pixels onto this image (e.g. 1 / the factor `load_photo` returned, to draw on its output)."""
    canvas = np.ascontiguousarray(image, dtype=np.uint8).copy()
    thickness = max(1, round(max(canvas.shape[:2]) / 400))
    font_scale = 0.45 * thickness
    for result in results:
        x, y, w, h = (round(value * scale) for value in (result.x, result.y, result.w, result.h))
        colour = UNCERTAIN if result.status == "uncertain" else COLOURS[result.gender]
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, thickness)
        label = result.label(show_probability)
        (text_w, text_h), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        label_h = text_h + base + 2 * thickness
        top = y - label_h if y >= label_h else y + h  # above the box, or below it at the top edge
        cv2.rectangle(canvas, (x, top), (x + text_w + 2 * thickness, top + label_h), colour, -1)
        cv2.putText(canvas, label, (x + thickness, top + text_h + thickness), cv2.FONT_HERSHEY_SIMPLEX,
                    font_scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return canvas
