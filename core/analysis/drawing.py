"""Drawing results on pictures: one look for photos, batch previews and live video.

Each face gets a box in its gender's colour (`core.labels.GENDER_COLOURS`, as in the charts;
grey when it is reported as uncertain) and its `FaceResult.label` ("1 female, 28 (25-31) | poor:
blurry"), whose number is the face's `FaceResult.number`, the one tables and the CSV show.
Labels never cover one another (`place_labels`): each goes above its box, below it or inside it,
wherever it covers no other label and no other face; where the words fit nowhere (a crowded
group photo), the face gets its number alone and the table beside the picture carries the words.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from ..labels import GENDER_COLOURS
from .results import FaceResult

COLOURS = {gender: tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))  # RGB
           for gender, hex_colour in GENDER_COLOURS.items()}
UNCERTAIN = (170, 170, 170)  # faces reported as uncertain (below the quality asked for)
FONT = cv2.FONT_HERSHEY_SIMPLEX

Rect = tuple[int, int, int, int]  # x, y, width, height


@dataclass(frozen=True)
class Label:
    """Where a face's label goes: its text and the filled rectangle behind it."""

    face: int  # index in the results
    text: str
    rect: Rect


def _sizes(shape: tuple) -> tuple[int, float]:
    """Line thickness and font scale for a picture: readable at the size the pages show it."""
    thickness = max(1, round(max(shape[:2]) / 400))
    return thickness, 0.45 * thickness


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _candidates(box: Rect, size: tuple[int, int], shape: tuple) -> list[Rect]:
    """Places for a label of `size` by `box`, in order of preference: above, below, inside at
    the top, inside at the bottom; each moved inside the picture."""
    (x, y, _, h), (width, height) = box, size
    spots = [(x, y - height), (x, y + h), (x, y), (x, y + h - height)]
    limit_x, limit_y = max(0, shape[1] - width), max(0, shape[0] - height)
    return [(min(max(0, sx), limit_x), min(max(0, sy), limit_y), width, height) for sx, sy in spots]


def place_labels(results: Sequence[FaceResult], shape: tuple, scale: float = 1.0,
                 show_probability: bool = False) -> list[Label]:
    """One label per face (in the results' order) that covers no label placed before it: the
    full label where it covers no other face either, else the face's number alone (anywhere
    clear of other labels), else the number on its box, the last resort of a crowd."""
    thickness, font_scale = _sizes(shape)
    boxes = [tuple(round(value * scale) for value in (r.x, r.y, r.w, r.h)) for r in results]
    placed: list[Label] = []
    for i, result in enumerate(results):
        others = [box for j, box in enumerate(boxes) if j != i]
        choice = None
        for text, avoid_faces in ((result.label(show_probability), True), (str(result.number), False)):
            (text_w, text_h), base = cv2.getTextSize(text, FONT, font_scale, thickness)
            size = (text_w + 2 * thickness, text_h + base + 2 * thickness)
            spots = _candidates(boxes[i], size, shape)
            clear = [rect for rect in spots if not any(_overlap(rect, label.rect) for label in placed)
                     and not (avoid_faces and any(_overlap(rect, box) for box in others))]
            if clear:
                choice = Label(i, text, clear[0])
                break
        placed.append(choice or Label(i, text, spots[2]))  # the number, inside its own box
    return placed


def draw_faces(image: np.ndarray, results: Sequence[FaceResult], show_probability: bool = False,
               scale: float = 1.0) -> np.ndarray:
    """A copy of an RGB image with every face boxed and labelled. `scale` maps the results'
    pixels onto this image (e.g. 1 / the factor `load_photo` returned, to draw on its output)."""
    canvas = np.ascontiguousarray(image, dtype=np.uint8).copy()
    thickness, font_scale = _sizes(canvas.shape)
    colours = [UNCERTAIN if result.status == "uncertain" else COLOURS[result.gender] for result in results]
    for result, colour in zip(results, colours):
        x, y, w, h = (round(value * scale) for value in (result.x, result.y, result.w, result.h))
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, thickness)
    for label in place_labels(results, canvas.shape, scale, show_probability):  # on top of every box
        x, y, w, h = label.rect
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colours[label.face], -1)
        (_, text_h), _ = cv2.getTextSize(label.text, FONT, font_scale, thickness)
        cv2.putText(canvas, label.text, (x + thickness, y + text_h + thickness), FONT, font_scale, (0, 0, 0),
                    thickness, cv2.LINE_AA)
    return canvas
