"""Following faces across video frames: tracks matched by box overlap, each with the history
of its model outputs, so a face keeps its number and its answers hold still between frames.

Greedy IoU matching needs no appearance model: enough for faces that move a little between the
frames a detector sees. Live video and recorded video both track with `IouTracker`.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ..analysis.pipeline import FaceAnalyzer
from ..analysis.quality import Quality
from ..analysis.results import FaceResult
from ..detect.face import Face, face_boxes
from ..imaging.boxes import iou
from ..inference.predictor import Prediction
from ..labels import age_band

MAX_SMOOTHING = 60  # predictions kept per track; `smoothing` averages the latest of them


@dataclass(frozen=True)
class TrackState:
    """One face as shown on a frame: its smoothed result (numbered by its track) and track facts."""

    result: FaceResult  # age and p_female averaged over the track's latest `smoothing` predictions
    face: Face  # the track's latest detection, as the detector gave it
    latest: Prediction  # the model's newest single output, unsmoothed
    predictions: int  # how many model outputs the track has had

    @property
    def track_id(self) -> int:
        return self.result.number

    @property
    def age_band(self) -> str:
        return age_band(self.result.age)


class Track:
    """A face followed across frames, with the history of its model outputs."""

    def __init__(self, track_id: int, face: Face):
        self.track_id = track_id
        self.face = face
        self.hits = 1  # detections that found it
        self.missed = 0  # consecutive detections that did not
        self.since_prediction: int | None = None  # detections since its last model run; None = never
        self.quality: Quality | None = None  # of the latest crop the model read
        self.velocity = np.zeros(2)  # px its box moved per detection, lately (see IouTracker.update)
        self._predictions: deque[Prediction] = deque(maxlen=MAX_SMOOTHING)

    def needs_prediction(self, refresh_every: int) -> bool:
        return self.since_prediction is None or self.since_prediction >= refresh_every

    def add_prediction(self, prediction: Prediction, quality: Quality | None = None) -> None:
        self._predictions.append(prediction)
        self.quality = quality
        self.since_prediction = 0

    def smoothed(self, window: int) -> Prediction:
        """Mean age, mean female probability and mean interval bounds (rounded to whole years)
        of the latest `window` predictions."""
        recent = list(self._predictions)[-window:]
        bounds = [(p.age_low, p.age_high) for p in recent if p.age_low is not None]
        low, high = (round(float(np.mean(side))) for side in zip(*bounds)) if bounds else (None, None)
        return Prediction(float(np.mean([p.age for p in recent])), float(np.mean([p.p_female for p in recent])),
                          low, high)

    def state(self, window: int, shape: tuple, analyzer: FaceAnalyzer) -> TrackState:
        result = analyzer.result(self.track_id, self.face, self.smoothed(window), self.quality, shape)
        return TrackState(result, self.face, self._predictions[-1], len(self._predictions))


class IouTracker:
    """Greedy IoU matching of detections to tracks: enough for faces that move a little
    between frames, and it needs no appearance model."""

    def __init__(self):
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, faces: list[Face], iou_threshold: float, max_missed: int, motion: bool = False) -> list[Track]:
        """Match this frame's faces; returns the tracks detected in this frame, in face order.
        With `motion`, each track is matched where its recent motion puts it rather than where it
        was last found: recorded video, where people walk and detections may be frames apart."""
        face_of = dict(_match(self.tracks, faces, iou_threshold, motion))  # track index -> face index
        by_face = {face_index: self.tracks[track_index] for track_index, face_index in face_of.items()}
        for index, track in enumerate(self.tracks):
            if index in face_of:
                face = faces[face_of[index]]
                step = (_centre(face) - _centre(track.face)) / (track.missed + 1)
                track.velocity = step if track.hits == 1 else 0.5 * track.velocity + 0.5 * step
                track.face, track.hits, track.missed = face, track.hits + 1, 0
            else:
                track.missed += 1
            if track.since_prediction is not None:
                track.since_prediction += 1
        self.tracks = [track for track in self.tracks if track.missed <= max_missed]
        for face_index, face in enumerate(faces):
            if face_index not in by_face:
                by_face[face_index] = self._new_track(face)
        return [by_face[i] for i in range(len(faces))]

    def end(self, track_ids: set[int] | None = None) -> None:
        """Stop following these tracks (all of them when None: a scene cut); numbering goes on."""
        self.tracks = [track for track in self.tracks if track_ids is not None and track.track_id not in track_ids]

    def _new_track(self, face: Face) -> Track:
        track = Track(self._next_id, face)
        self._next_id += 1
        self.tracks.append(track)
        return track


def _centre(face: Face) -> np.ndarray:
    return np.array([face.x + face.w / 2, face.y + face.h / 2])


def _match(tracks: list[Track], faces: list[Face], threshold: float, motion: bool = False) -> list[tuple[int, int]]:
    """(track index, face index) pairs, best overlaps first, each side used at most once."""
    if not tracks or not faces:
        return []
    expected = face_boxes([t.face for t in tracks])
    if motion:
        expected += np.tile(np.array([t.velocity * (t.missed + 1) for t in tracks]), 2)
    overlaps = iou(expected, face_boxes(faces))
    pairs, used_tracks, used_faces = [], set(), set()
    for flat in np.argsort(-overlaps, axis=None):
        t, f = np.unravel_index(flat, overlaps.shape)
        if overlaps[t, f] < threshold:
            break
        if t not in used_tracks and f not in used_faces:
            pairs.append((int(t), int(f)))
            used_tracks.add(t)
            used_faces.add(f)
    return pairs
