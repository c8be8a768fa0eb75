"""Real-time age and gender on video frames: detection, IoU tracking, smoothing, drawing.

`FrameProcessor.process` is what the live page's WebRTC callback and `bench/live.py` both call,
so the benchmark measures exactly the code users run. Every `detect_every` frames it runs the
face detector and matches faces to tracks by box overlap; frames in between reuse those boxes
(a frame's worth of lag nobody sees, for half the cost). The age/gender model runs only for
tracks that are new or were last predicted `refresh_every` detections ago, all such faces of a
frame in one batch: the model is the expensive part, and a face does not change age between
frames. Each track averages its recent predictions, so labels hold still instead of flickering.
Faces are found, aligned and read by `core.analysis.pipeline.FaceAnalyzer`, the pipeline photos
use, tracked by `core.video.tracking` and drawn by `core.analysis.drawing.draw_faces`, so live
video and analysed photos give and show the same results; a face's number on its box is its
track's number.

Tracks become people (`core.video.people.People`): a face's number on its box is its person's,
each model reading goes into that person's aggregate, and `people()` gives the same per-person
table as a recorded video's people.csv. Recorded video (`core.video.recorded`) runs this same
processor, frame by frame, through `analyse`, with gaps bridged (`max_gap_s`) and scene cuts
(`cut`); the live camera keeps gaps to the tracker's own `max_missed`.

No Streamlit here: the page owns the UI, this module owns the per-frame work. The analyzer (one
detector and one model) is handed in, so one loaded pair serves every viewer.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ..analysis.drawing import draw_faces
from ..analysis.pipeline import FaceAnalyzer
from ..labels import AGE_BAND_NAMES, GENDERS, age_band
from .people import People, PersonResult
from .tracking import MAX_SMOOTHING, IouTracker, Track, TrackState

TIMING_WINDOW = 60  # frames over which fps and the median frame time are measured


@dataclass(frozen=True)
class LiveSettings:
    """Knobs of the live view; the page changes them through `FrameProcessor.update_settings`."""

    min_score: float = 0.6  # detector confidence below which a face is ignored
    smoothing: int = 10  # recent predictions averaged per track (1 = show raw predictions)
    detect_every: int = 2  # run the detector on every n-th frame; others reuse its boxes
    refresh_every: int = 3  # detections between two model runs on the same track
    iou_threshold: float = 0.3  # box overlap needed to continue a track
    max_missed: int = 8  # detections a track survives without being found (blur, a hand)
    min_hits: int = 3  # detections of a track before it counts as a person (fewer: a false alarm)
    max_gap_s: float = 0.0  # a new track this soon after a person was lost, where they went, is them again
    follow_motion: bool = False  # match tracks where their motion puts them (recorded video: people walk)

    def __post_init__(self):
        if not 0.0 < self.min_score < 1.0:
            raise ValueError(f"min_score must be between 0 and 1, got {self.min_score}")
        if not 1 <= self.smoothing <= MAX_SMOOTHING:
            raise ValueError(f"smoothing must be 1..{MAX_SMOOTHING}, got {self.smoothing}")
        if min(self.detect_every, self.refresh_every, self.min_hits) < 1 or self.max_missed < 0:
            raise ValueError("detect_every, refresh_every and min_hits must be >= 1, max_missed >= 0")
        if not 0.0 <= self.max_gap_s <= 60.0:
            raise ValueError(f"max_gap_s must be between 0 and 60 seconds, got {self.max_gap_s}")


@dataclass(frozen=True)
class LiveStats:
    """What the page shows: current faces, speed, and the tally of distinct people seen."""

    frames: int
    fps: float  # frames processed per second over the last `TIMING_WINDOW` frames
    frame_ms: float  # mean processing time per frame over that window: the CPU headroom
    faces: tuple[TrackState, ...]
    people: int  # distinct people: tracks found by at least `min_hits` detections, gaps bridged
    by_gender: dict[str, int]
    by_age_band: dict[str, int]


class FrameProcessor:
    """Analyzer + tracker + people + settings for one video stream.

    One instance per viewer or video (tracks and people belong to one camera); the analyzer
    inside is shared. `process` runs on the WebRTC worker thread while the page thread calls
    `update_settings`, `stats`, `people` and `reset`: `_lock` guards settings and published
    results, `_frame_lock` keeps frames in order through the tracker. Changing a setting is only a
    field swap: nothing is rebuilt, so a slider never stalls the video.
    """

    def __init__(self, analyzer: FaceAnalyzer, settings: LiveSettings | None = None, thumbnails: bool = True):
        self.analyzer = analyzer
        self._settings = settings or LiveSettings()
        self._thumbnails = thumbnails
        self._lock = threading.Lock()
        self._frame_lock = threading.Lock()
        self._faces: tuple[TrackState, ...] = ()
        self._frame_ends: deque[float] = deque(maxlen=TIMING_WINDOW)
        self._frame_ms: deque[float] = deque(maxlen=TIMING_WINDOW)
        self._start_stream()
        self._people = People(thumbnails)

    def _start_stream(self) -> None:
        self._tracker = IouTracker()
        self._shown: list[Track] = []  # tracks found by the latest detection
        self._since_detection: int | None = None  # frames since it; None = detect now
        self._frames = 0
        self._clock_start: float | None = None  # live frames are timed from the first one

    @property
    def settings(self) -> LiveSettings:
        with self._lock:
            return self._settings

    def update_settings(self, **changes) -> LiveSettings:
        """Change settings from any thread; they apply from the next frame on."""
        with self._lock:
            self._settings = dataclasses.replace(self._settings, **changes)
            return self._settings

    def reset(self) -> None:
        """Forget tracks, people and timings (a new session of counting)."""
        with self._frame_lock, self._lock:
            self._start_stream()
            self._people = People(self._thumbnails)
            self._clear_published()

    def end_stream(self) -> None:
        """The stream stopped: forget tracks, faces in view and timings, keep the people seen (a
        next stream counts on; `reset` starts the count anew)."""
        with self._frame_lock, self._lock:
            self._start_stream()
            self._people.cut()
            self._clear_published()

    def _clear_published(self) -> None:
        self._faces = ()
        self._frame_ends.clear()
        self._frame_ms.clear()

    def cut(self) -> None:
        """A scene cut in a recorded video: every track ends, the next frame is detected afresh,
        and nobody before the cut is linked to anyone after it."""
        with self._frame_lock:
            self._tracker.end()
            self._shown, self._since_detection = [], None
            self._people.cut()

    def process(self, frame: np.ndarray, show_probability: bool = False,
                time_s: float | None = None) -> tuple[np.ndarray, list[TrackState]]:
        """Annotated copy of an RGB uint8 frame, and the faces shown on it."""
        start = time.perf_counter()
        states = self._analyse(frame, time_s, start)
        annotated = draw_faces(frame, [state.result for state in states], show_probability)
        self._publish(states, start)
        return annotated, states

    def analyse(self, frame: np.ndarray, time_s: float | None = None) -> list[TrackState]:
        """The faces on an RGB uint8 frame, each numbered by its person, without drawing them
        (recorded video draws later, once it knows which tracks were people). `time_s`: the
        frame's time in its video (live frames: seconds since the stream's first frame)."""
        start = time.perf_counter()
        states = self._analyse(frame, time_s, start)
        self._publish(states, start)
        return states

    def _analyse(self, frame: np.ndarray, time_s: float | None, start: float) -> list[TrackState]:
        with self._frame_lock:
            settings = self.settings
            if time_s is None:
                self._clock_start = start if self._clock_start is None else self._clock_start
                time_s = start - self._clock_start
            index = self._frames
            self._frames += 1
            if self._since_detection is None or self._since_detection + 1 >= settings.detect_every:
                self._shown = self._detect(frame, settings, index, time_s)
                self._since_detection = 0
            else:
                self._since_detection += 1
            self._people.shown([track.track_id for track in self._shown], index, time_s)
            states = []
            for track in self._shown:
                state = track.state(settings.smoothing, frame.shape, self.analyzer)
                number = self._people.number(track.track_id)
                states.append(dataclasses.replace(state, result=dataclasses.replace(state.result, number=number)))
            return states

    def _detect(self, frame: np.ndarray, settings: LiveSettings, index: int, time_s: float) -> list[Track]:
        """Find faces, continue or start their tracks and people, and predict those that are due."""
        faces = self.analyzer.detect(frame, settings.min_score)
        tracks = self._tracker.update(faces, settings.iou_threshold, settings.max_missed, settings.follow_motion)
        replaced = self._people.detected(tracks, self._tracker.tracks, index, time_s, frame.shape,
                                         settings.min_hits, settings.max_gap_s)
        if replaced:
            self._tracker.end(set(replaced))
        due = [t for t in tracks if t.needs_prediction(settings.refresh_every)]
        if due:  # one model call for all faces of the frame that need a fresh prediction
            faces = [t.face for t in due]
            crops, measured = self.analyzer.views(frame, faces)
            for track, prediction, quality in zip(due, self.analyzer.predict(crops),
                                                  self.analyzer.measure(faces, measured, frame, confirm=False)):
                track.add_prediction(prediction, quality)
                self._people.read(track.track_id, prediction, quality, track.face, index, time_s, frame)
        return tracks

    def use_analyzer(self, analyzer: FaceAnalyzer) -> None:
        """Switch models (e.g. a newer checkpoint) without losing tracks and people."""
        with self._frame_lock:
            self.analyzer = analyzer

    def _publish(self, states: list[TrackState], start: float) -> None:
        end = time.perf_counter()
        with self._lock:
            self._faces = tuple(states)
            self._frame_ends.append(end)
            self._frame_ms.append((end - start) * 1000.0)

    def people(self) -> list[PersonResult]:
        """Everyone seen so far (since the last `reset`), in order of appearance, with the
        analyzer's answer settings: the rows of people.csv."""
        return self._people.results(self.analyzer.answers)

    def spans(self) -> list[tuple[int, float, float]]:
        """(person, from, to seconds) of each stretch each person was in view (see `People.spans`)."""
        return self._people.spans()

    def counted(self, number: int, frame: int) -> bool:
        """Whether face number `number` on frame `frame` (0-based) is a person (see `People.counted`)."""
        return self._people.counted(number, frame)

    def thumbnail(self, number: int) -> np.ndarray | None:
        """The best view of person `number` (RGB, at most 128 px), when thumbnails are kept."""
        return self._people.thumbnail(number)

    def stats(self) -> LiveStats:
        """A consistent snapshot for the page (safe to call while frames are processed)."""
        people = self.people()
        with self._lock:
            ends = list(self._frame_ends)
            fps = (len(ends) - 1) / (ends[-1] - ends[0]) if len(ends) > 1 and ends[-1] > ends[0] else 0.0
            return LiveStats(
                frames=self._frames,
                fps=fps,
                frame_ms=float(np.mean(self._frame_ms)) if self._frame_ms else 0.0,
                faces=self._faces,
                people=len(people),
                by_gender=_count((person.gender for person in people), GENDERS),
                by_age_band=_count((age_band(person.age) for person in people), AGE_BAND_NAMES),
            )


def _count(values: Iterable[str], names: Iterable[str]) -> dict[str, int]:
    """Counts for every name in a fixed order, zeros included (stable table rows and charts)."""
    counts = Counter(values)
    return {name: counts.get(name, 0) for name in names}
