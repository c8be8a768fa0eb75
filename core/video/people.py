"""People in video: tracks of faces turned into persons, each counted once, with one answer.

A tracker's track ends whenever the detector loses a face for long enough (a hand, a pillar,
a turned head) and a new one starts when it is found again: counting tracks overcounts. `People`
sits above the tracker and keeps, per person:
- a number, given when the person's first track starts (the number drawn on the box) and given
  back if that track turns out to be a false alarm (fewer than `min_hits` detections);
- links across short gaps: a new track that starts within `max_gap_s` of a person being lost,
  where that person's motion (kept from their last detections) puts them, and at their size, is
  the same person again. A person whose motion carries them out of the picture has left, and a
  scene cut (`cut`) ends every chance of a link;
- a bounded sample of the model's readings (at most MAX_READINGS, thinned evenly as the person
  stays), so memory does not grow with the time a person stays in view;
- the best view (good quality first, then the largest face), with a small thumbnail.

`PersonResult` is the person-level result type: like `FaceResult` for faces it owns its columns
(`PERSON_COLUMNS`) and its row, which the CLI's people.csv, the Video page and the live page's
table all use. Its answers are robust aggregates over the person's good-quality readings (all
readings when none is good): the median age, interval bounds and P(female).

No Streamlit, no files: `core.video.live.FrameProcessor` feeds it from the live pipeline, and
the recorded-video job (`core.video.recorded`) writes its results.
"""
from __future__ import annotations

import csv
import math
import os
import threading
from collections import deque
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import cv2
import numpy as np

from ..analysis.quality import Quality
from ..batch.spreadsheet import safe_cell
from ..config import QUALITY_GRADES, AnswerSettings
from ..detect.face import Face
from ..inference.calibration import age_check
from ..inference.predictor import AgeReadout, GenderReadout, Prediction

if TYPE_CHECKING:
    import pandas as pd

    from .tracking import Track

MAX_READINGS = 256  # model readings kept per person; beyond, every other one is dropped, evenly
THUMBNAIL_SIDE = 128  # px, longer side of a person's best-view picture
THUMBNAIL_MARGIN = 0.3  # of the face box, added on each side: some hair and chin around the face
TRAIL = 8  # latest detections kept per person to estimate their motion
SPAN_GAP_S = 0.25  # a person out of view longer than this starts a new span of `People.spans`
MOTION_WINDOW_S = 1.0  # the motion is measured over at most this much of the trail
# A new track continues a lost person when it starts within this many of the person's face
# widths from where their motion puts them, plus LINK_SPREAD_PER_S widths per second of gap
# (they may have stopped or turned), at a face size within LINK_SIZE_RATIO of theirs. A face's
# size is the longer side of its box: a face half behind a post is narrower, not shorter.
LINK_RADIUS = 1.0
LINK_SPREAD_PER_S = 0.75
LINK_SIZE_RATIO = 1.6

PERSON_COLUMN_TYPES: dict[str, type] = {
    "person": int, "first_seen_s": float, "last_seen_s": float, "first_frame": int, "last_frame": int,
    "frames_seen": int, "readings": int, "good_readings": int,
    "age": float, "age_low": int, "age_high": int, "gender": str, "p_female": float, "gender_confidence": float,
    "age_threshold": float, "age_check": str, "quality": str, "status": str,
    "best_frame": int, "best_time_s": float, "x": int, "y": int, "w": int, "h": int,
}
PERSON_COLUMNS = list(PERSON_COLUMN_TYPES)


@dataclass(frozen=True)
class PersonResult(GenderReadout, AgeReadout):
    """One person in a video: when they were in view, and the aggregate of the model's readings.

    `frames_seen` counts the frames their box is on; `readings` the model's readings of their
    face, `good_readings` those of good quality, which alone make the answers when there are any
    (`quality` is then "good"). `status` is "uncertain" when the quality is below what the answer
    settings ask for. The best view is frame `best_frame`, face box x, y, w, h."""

    person: int
    first_seen_s: float
    last_seen_s: float
    first_frame: int
    last_frame: int
    frames_seen: int
    readings: int
    good_readings: int
    age: float
    p_female: float
    age_low: int | None
    age_high: int | None
    quality: str
    status: str
    age_threshold: float | None
    age_check: str | None
    best_frame: int
    best_time_s: float
    x: int
    y: int
    w: int
    h: int

    def row(self) -> dict:
        """The person as an output row: exactly PERSON_COLUMNS, in their order."""
        values = {field.name: getattr(self, field.name) for field in fields(self)}
        values.update(gender=self.gender, gender_confidence=round(self.gender_confidence, 4))
        return {column: values[column] for column in PERSON_COLUMNS}


def people_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """Person rows as a table with exactly PERSON_COLUMNS, each of its one type (integers stay
    integers with empty cells), as the CSV reads back."""
    import pandas as pd

    table = pd.DataFrame(list(rows), columns=PERSON_COLUMNS)
    for column, kind in PERSON_COLUMN_TYPES.items():
        table[column] = table[column].astype({int: "Int64", float: "float64", str: "object"}[kind])
    return table


def write_people_csv(path: str | Path, people: Iterable[PersonResult]) -> None:
    """people.csv, replaced whole (written beside it, then renamed): a reader never sees half a file."""
    path = Path(path)
    partial = path.with_name(f".partial-{path.name}")
    with partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=PERSON_COLUMNS, extrasaction="raise")
        writer.writeheader()
        writer.writerows({key: safe_cell(value) for key, value in person.row().items()} for person in people)
    os.replace(partial, path)


class Readings:
    """A person's model readings: exact counts, and an even sample of at most MAX_READINGS
    (when full, every other one is dropped and only every second new one is kept from then on).
    The sample grows as readings come, and `freeze` drops it for its aggregate once the person
    cannot come back: a video's finished people cost a few hundred bytes each."""

    def __init__(self):
        self.values = np.empty((16, 5), np.float64)  # age, p_female, low, high, good; grows to MAX_READINGS
        self.kept = 0
        self.count = 0
        self.good = 0
        self._stride = 1
        self._frozen: tuple[Prediction, bool] | None = None

    def add(self, prediction: Prediction, good: bool) -> None:
        self.count += 1
        self.good += good
        if self._frozen is not None or (self.count - 1) % self._stride:
            return
        if self.kept == MAX_READINGS:
            self.values[:MAX_READINGS // 2] = self.values[::2]
            self.kept, self._stride = MAX_READINGS // 2, self._stride * 2
            if (self.count - 1) % self._stride:
                return
        if self.kept == len(self.values):
            self.values = np.concatenate([self.values, np.empty_like(self.values)])
        low = np.nan if prediction.age_low is None else prediction.age_low
        high = np.nan if prediction.age_high is None else prediction.age_high
        self.values[self.kept] = (prediction.age, prediction.p_female, low, high, float(good))
        self.kept += 1

    def aggregate(self) -> tuple[Prediction, bool]:
        """The median reading over the good ones (all when none is good), and whether any was good."""
        if self._frozen is not None:
            return self._frozen
        sample = self.values[:self.kept]
        good = sample[sample[:, 4] > 0]
        used = good if len(good) else sample
        bounds = used[~np.isnan(used[:, 2])]
        low, high = (int(round(float(np.median(bounds[:, i])))) for i in (2, 3)) if len(bounds) else (None, None)
        return Prediction(float(np.median(used[:, 0])), float(np.median(used[:, 1])), low, high), bool(len(good))

    def freeze(self) -> None:
        """Keep the aggregate, drop the sample (no reading may come after)."""
        if self._frozen is None and self.kept:
            self._frozen = self.aggregate()
            self.values = self.values[:0].copy()


@dataclass(frozen=True)
class View:
    """Where a person was seen well: a frame, the face box on it, and how good the view is."""

    frame: int
    time_s: float
    box: tuple[int, int, int, int]
    rank: tuple  # larger is better: (good quality, face size, detection score)


class _Person:
    def __init__(self, number: int, scene: int):
        self.number = number
        self.scene = scene
        self.counted = False  # a track of theirs reached min_hits: a person, not a false alarm
        self.first: tuple[int, float] | None = None  # (frame, time) first and last shown
        self.last: tuple[int, float] | None = None
        self.frames_seen = 0
        self.readings = Readings()
        self.best: View | None = None
        self.thumbnail: np.ndarray | None = None
        self.trail: deque[tuple[float, float, float, float]] = deque(maxlen=TRAIL)  # time, cx, cy, size
        self.tracklet: _Tracklet | None = None  # the track following them now, if any
        self.spans: list[list[float]] = []  # [from, to] seconds in view

    def shown(self, frame: int, time_s: float) -> None:
        if self.first is None:
            self.first = (frame, time_s)
        if self.spans and time_s - self.spans[-1][1] <= SPAN_GAP_S:
            self.spans[-1][1] = time_s
        else:
            self.spans.append([time_s, time_s])
        self.last = (frame, time_s)
        self.frames_seen += 1

    def velocity(self) -> tuple[float, float]:
        """Pixels per second over the latest MOTION_WINDOW_S of the trail (0 with one point)."""
        t1, x1, y1, _ = self.trail[-1]
        recent = [point for point in self.trail if t1 - point[0] <= MOTION_WINDOW_S]
        t0, x0, y0, _ = recent[0]
        return ((x1 - x0) / (t1 - t0), (y1 - y0) / (t1 - t0)) if t1 > t0 else (0.0, 0.0)


class _Tracklet:
    """One tracker track as part of a person; its sightings wait in `pending` until the track
    has `min_hits` detections (then they are the person's), or are dropped with it."""

    def __init__(self, track_id: int, person: _Person):
        self.track_id = track_id
        self.person = person
        self.committed = False
        self.pending: list[tuple] = []


class People:
    """Persons from tracks (see the module docstring). Thread-safe: the live page reads results
    while frames are processed."""

    def __init__(self, thumbnails: bool = True):
        self._lock = threading.Lock()
        self._thumbnails = thumbnails
        self._persons: dict[int, _Person] = {}
        self._tracklets: dict[int, _Tracklet] = {}
        self._scene = 0
        self._ended: list[int] = []  # tracks replaced by a newer track of their person, to end
        self._open: set[int] = set()  # people who may still be seen again (readings not frozen)

    # -- what the pipeline tells ---------------------------------------------------------------

    def detected(self, tracks: list[Track], alive: Iterable[Track], frame: int, time_s: float, shape: tuple,
                 min_hits: int, max_gap_s: float) -> list[int]:
        """After a detection: `tracks` were found on this frame, `alive` are all the tracker
        still follows. Numbers new tracks (a lost person again, or a new one), makes persons of
        tracks with `min_hits` detections, drops the tracks the tracker dropped. Returns the ids
        of tracks the tracker should end: a person's old track, once a new one continues them."""
        with self._lock:
            alive_ids = {track.track_id for track in alive}
            for track_id in [t for t in self._tracklets if t not in alive_ids]:
                self._end(self._tracklets.pop(track_id))
            self._finish(time_s, max_gap_s)
            found = {track.track_id for track in tracks}
            new = [track for track in tracks if track.track_id not in self._tracklets]
            replaced = self._link(new, found, time_s, shape, max_gap_s) if max_gap_s > 0 else {}
            for track in new:
                person = replaced.get(track.track_id) or self._new_person()
                old = person.tracklet
                person.tracklet = self._tracklets[track.track_id] = _Tracklet(track.track_id, person)
                if old is not None:  # continued by the new track: the old one is done
                    self._tracklets.pop(old.track_id, None)
                    self._end(old)
            ended, self._ended = self._ended, []
            for track in tracks:
                tracklet = self._tracklets[track.track_id]
                self._note(tracklet, ("trail", time_s, track.face))
                if not tracklet.committed and track.hits >= min_hits:
                    self._commit(tracklet)
            return ended

    def shown(self, track_ids: Iterable[int], frame: int, time_s: float) -> None:
        """These tracks' boxes are on frame `frame`."""
        with self._lock:
            for track_id in track_ids:
                tracklet = self._tracklets.get(track_id)
                if tracklet is not None:
                    self._note(tracklet, ("shown", frame, time_s))

    def read(self, track_id: int, prediction: Prediction, quality: Quality | None, face: Face, frame: int,
             time_s: float, image: np.ndarray) -> None:
        """The model read this track's face on frame `frame` (`image`, for the best view's picture)."""
        with self._lock:
            tracklet = self._tracklets.get(track_id)
            if tracklet is None:
                return
            good = quality is not None and quality.grade == "good"
            rank = (good, quality.size_px if quality is not None else face.w, round(face.score, 3))
            view = View(frame, time_s, (face.x, face.y, face.w, face.h), rank)
            person = tracklet.person
            best = person.best
            for _, _, _, pending_view, _ in (item for item in tracklet.pending if item[0] == "read"):
                best = pending_view if best is None or pending_view.rank > best.rank else best
            picture = _thumbnail(image, face) if self._thumbnails and (best is None or rank > best.rank) else None
            self._note(tracklet, ("read", prediction, good, view, picture))

    def cut(self) -> None:
        """A scene cut: nobody seen before it can be linked to anyone after it."""
        with self._lock:
            self._scene += 1

    # -- what it tells -------------------------------------------------------------------------

    def number(self, track_id: int) -> int | None:
        with self._lock:
            tracklet = self._tracklets.get(track_id)
            return None if tracklet is None else tracklet.person.number

    def counted(self, number: int, frame: int) -> bool:
        """Whether `number` is, on frame `frame`, a person (not a false alarm still unconfirmed
        or given up; a number given back and given again later is not the same person)."""
        with self._lock:
            person = self._persons.get(number)
            return person is not None and person.counted and person.first is not None and person.first[0] <= frame

    def results(self, answers: AnswerSettings = AnswerSettings()) -> list[PersonResult]:
        """Every person so far, in order of appearance."""
        with self._lock:
            persons = [p for p in self._persons.values() if p.counted and p.readings.kept and p.first is not None]
            return [_result(person, answers) for person in sorted(persons, key=lambda p: (p.first[0], p.number))]

    def spans(self) -> list[tuple[int, float, float]]:
        """(person, from, to seconds) of every stretch each person was in view (gaps under
        SPAN_GAP_S joined), in order of appearance: who was there when."""
        with self._lock:
            persons = sorted((p for p in self._persons.values() if p.counted and p.first is not None),
                             key=lambda p: (p.first[0], p.number))
            return [(p.number, start, end) for p in persons for start, end in p.spans]

    def thumbnail(self, number: int) -> np.ndarray | None:
        with self._lock:
            person = self._persons.get(number)
            return None if person is None else person.thumbnail

    # -- inside --------------------------------------------------------------------------------

    def _finish(self, time_s: float, max_gap_s: float) -> None:
        """Freeze the readings of people who can no longer come back (lost for longer than the
        gap, or before a scene cut): memory then stays flat however many have passed."""
        for number in list(self._open):
            person = self._persons.get(number)
            if person is None:  # a false alarm's number, given back
                self._open.discard(number)
                continue
            if not person.counted:
                continue
            gone = person.trail and time_s - person.trail[-1][0] > max_gap_s
            if person.tracklet is None and (gone or person.scene != self._scene):
                person.readings.freeze()
                self._open.discard(number)

    def _new_person(self) -> _Person:
        number = 1
        while number in self._persons:
            number += 1
        person = self._persons[number] = _Person(number, self._scene)
        self._open.add(number)
        return person

    def _end(self, tracklet: _Tracklet) -> None:
        """A track is over: a person's track gives way (linked), or a false alarm is forgotten."""
        person = tracklet.person
        if person.tracklet is tracklet:
            person.tracklet = None
        else:  # replaced by a newer track of the same person: the tracker must drop it
            self._ended.append(tracklet.track_id)
        if not person.counted and person.tracklet is None:
            self._persons.pop(person.number, None)  # its number is free again

    def _note(self, tracklet: _Tracklet, item: tuple) -> None:
        if tracklet.committed:
            _apply(tracklet.person, item)
        else:
            tracklet.pending.append(item)

    def _commit(self, tracklet: _Tracklet) -> None:
        tracklet.committed = True
        tracklet.person.counted = True
        for item in tracklet.pending:
            _apply(tracklet.person, item)
        tracklet.pending = []

    def _link(self, new: list[Track], found: set[int], time_s: float, shape: tuple,
              max_gap_s: float) -> dict[int, _Person]:
        """Which new tracks continue a lost person: the closest to where each person's motion
        puts them, one each."""
        height, width = shape[:2]
        lost = [p for p in self._persons.values()
                if p.counted and p.scene == self._scene and p.trail
                and (p.tracklet is None or p.tracklet.track_id not in found)]
        pairs = []
        for person in lost:
            seen_at, cx, cy, _ = person.trail[-1]
            size = float(np.median([point[3] for point in person.trail]))
            gap = time_s - seen_at
            if not 0 < gap <= max_gap_s:
                continue
            vx, vy = person.velocity()
            px, py = cx + vx * gap, cy + vy * gap
            if not (-size / 2 <= px <= width + size / 2 and -size / 2 <= py <= height + size / 2):
                continue  # walked out of the picture: gone, not hidden
            for track in new:
                face = track.face
                ratio = max(face.w, face.h) / size
                distance = math.hypot(face.x + face.w / 2 - px, face.y + face.h / 2 - py) / size
                if 1 / LINK_SIZE_RATIO <= ratio <= LINK_SIZE_RATIO and distance <= LINK_RADIUS + LINK_SPREAD_PER_S * gap:
                    pairs.append((distance, track.track_id, person))
        linked: dict[int, _Person] = {}
        taken: set[int] = set()
        for _, track_id, person in sorted(pairs, key=lambda pair: pair[0]):
            if track_id not in linked and person.number not in taken:
                linked[track_id] = person
                taken.add(person.number)
        return linked


def _apply(person: _Person, item: tuple) -> None:
    kind = item[0]
    if kind == "shown":
        person.shown(item[1], item[2])
    elif kind == "trail":
        _, time_s, face = item
        person.trail.append((time_s, face.x + face.w / 2, face.y + face.h / 2, float(max(face.w, face.h))))
    else:
        _, prediction, good, view, picture = item
        person.readings.add(prediction, good)
        if person.best is None or view.rank > person.best.rank:
            person.best = view
            if picture is not None:
                person.thumbnail = picture


def _thumbnail(image: np.ndarray, face: Face) -> np.ndarray:
    """The face with a margin, at most THUMBNAIL_SIDE px: a copy, so no frame is kept alive."""
    margin_x, margin_y = face.w * THUMBNAIL_MARGIN, face.h * THUMBNAIL_MARGIN
    height, width = image.shape[:2]
    x0, y0 = max(0, int(face.x - margin_x)), max(0, int(face.y - margin_y))
    x1, y1 = min(width, int(face.x + face.w + margin_x)), min(height, int(face.y + face.h + margin_y))
    crop = image[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
    scale = THUMBNAIL_SIDE / max(crop.shape[:2])
    if scale < 1:
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                          interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(crop).copy()


def _result(person: _Person, answers: AnswerSettings) -> PersonResult:
    prediction, good = person.readings.aggregate()
    quality = "good" if good else "poor"
    poor = QUALITY_GRADES.index(quality) < QUALITY_GRADES.index(answers.min_quality)
    check = None if answers.age_threshold is None else age_check(
        None if poor else prediction.age_low, None if poor else prediction.age_high, answers.age_threshold)
    best = person.best
    return PersonResult(
        person=person.number, first_seen_s=round(person.first[1], 3), last_seen_s=round(person.last[1], 3),
        first_frame=person.first[0], last_frame=person.last[0], frames_seen=person.frames_seen,
        readings=person.readings.count, good_readings=person.readings.good,
        age=round(prediction.age, 1), p_female=round(prediction.p_female, 4), age_low=prediction.age_low,
        age_high=prediction.age_high, quality=quality, status="uncertain" if poor else "ok",
        age_threshold=answers.age_threshold, age_check=check, best_frame=best.frame, best_time_s=round(best.time_s, 3),
        x=best.box[0], y=best.box[1], w=best.box[2], h=best.box[3])
