"""Recorded video into people: the job behind `python -m core video` and the Video page.

A video file is decoded frame by frame (`core.video.reader`) and every frame goes through the
live pipeline, `core.video.live.FrameProcessor.analyse`: detection every `every` frames, IoU
tracking, the model on each track, tracks made into people (`core.video.people`), with gaps of
up to `max_gap_s` bridged and scene cuts (`core.video.cuts`) ending tracks. Out come people.csv
(one row per person, `PersonResult`), optionally faces.csv (every face on every frame) and an
annotated copy of the video (`core.video.writer`).

Frames are written a few frames late (`delay`): by then a new track has had its `min_hits`
detections or has been given up, so the copy and faces.csv show people only, never a false
alarm that flickered for two frames, and every box carries its person's final number.

Decoding and encoding run on threads of their own beside the analysis (FFmpeg works outside
Python's lock), so on two cores they overlap with detection instead of adding to it. Every
queue is bounded and frames are dropped once written, so memory stays flat however long the
video. Whatever stops the job (the end, a damaged frame, Ctrl-C) the outputs are closed whole:
people.csv holds everyone seen so far, faces.csv every row so far, the copy every frame so far.
"""
from __future__ import annotations

import csv
import os
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..analysis.drawing import draw_faces
from ..analysis.pipeline import FaceAnalyzer
from ..analysis.results import COLUMNS
from ..batch.spreadsheet import safe_cell
from .cuts import CutDetector
from .live import FrameProcessor, LiveSettings
from .people import PersonResult, write_people_csv
from .reader import Frame, VideoError, VideoInfo, VideoReader
from .tracking import MAX_SMOOTHING, TrackState
from .writer import FORMATS, AnnotatedWriter

# The tracker keeps a face it lost for this long before its track ends; longer gaps are the
# people layer's, which follows the person's motion (a face moving while hidden no longer
# overlaps where it was).
TRACKER_HOLD_S = 0.2
# Box overlap that continues a track. Lower than live video's: with `every` > 1 a walking face
# moves a good part of its width between two detections, and until a track has moved once there
# is no motion to match it by.
IOU_THRESHOLD = 0.15
QUEUE_FRAMES = 6  # decoded frames waiting for analysis, and annotated ones for the encoder
# faces.csv: the frame, its time and the person, then a face's own columns (its "face" number is the person)
FACE_COLUMNS = ["frame", "time_s", "person", *(column for column in COLUMNS if column != "face")]
Progress = Callable[[int, "int | None"], None]


def detector_use(detector: str = "yunet", small_faces: bool = False) -> str:
    """The `core.detect.DETECTOR_FOR` use for a video read with `detector`: YuNet at 960 px,
    at full size for `small_faces` (a far camera), or BlazeFace (near faces only)."""
    if detector == "blazeface":
        if small_faces:
            raise ValueError("small faces need the yunet detector: BlazeFace misses faces under about 150 px in 720p")
        return "video, near faces"
    if detector != "yunet":
        raise ValueError(f"detector must be yunet or blazeface, not {detector!r}")
    return "video, small faces" if small_faces else "video"


@dataclass(frozen=True)
class VideoSettings:
    """How a recorded video is analysed (the detector and model are the analyzer's)."""

    every: int = 1  # run the detector on every n-th frame; frames between keep its boxes
    # A person hidden or missed this long is still the same person. Half a second more than the
    # one second the counts are held to: a detector loses a face well before it is half hidden.
    max_gap_s: float = 1.5
    min_score: float = 0.6  # detector confidence below which a face is ignored
    min_hits: int = 3  # detections before a track is a person (fewer: a false alarm, not counted)
    refresh_every: int = 1  # detections between two model readings of the same person
    smoothing: int = 10  # readings averaged in the label drawn on the video
    cuts: bool = True  # end every track at a scene cut

    def __post_init__(self):
        if not 1 <= self.every <= 100:
            raise ValueError(f"every must be 1..100 frames, got {self.every}")
        if not 0.0 <= self.max_gap_s <= 60.0:
            raise ValueError(f"max_gap_s must be between 0 and 60 seconds, got {self.max_gap_s}")
        if not 0.0 < self.min_score < 1.0:
            raise ValueError(f"min_score must be between 0 and 1, got {self.min_score}")
        if self.min_hits < 1 or self.refresh_every < 1 or not 1 <= self.smoothing <= MAX_SMOOTHING:
            raise ValueError(f"min_hits and refresh_every must be >= 1, smoothing 1..{MAX_SMOOTHING}")

    def live(self, fps: float) -> LiveSettings:
        """The live pipeline's settings for a video of `fps` frames per second."""
        hold = max(1, round(TRACKER_HOLD_S * fps / self.every))
        return LiveSettings(min_score=self.min_score, smoothing=self.smoothing, detect_every=self.every,
                            refresh_every=self.refresh_every, iou_threshold=IOU_THRESHOLD, max_missed=hold,
                            min_hits=self.min_hits,
                            max_gap_s=self.max_gap_s, follow_motion=True)

    @property
    def delay(self) -> int:
        """Frames a frame waits before it is written: time for a new track to be confirmed."""
        return (self.min_hits + 1) * self.every


@dataclass(frozen=True)
class VideoOutputs:
    """Where results go: people.csv always, faces.csv and the annotated copy when asked for."""

    people: Path
    faces: Path | None = None
    annotated: Path | None = None
    show_probability: bool = False  # on the annotated copy's labels

    def __post_init__(self):
        paths = [Path(p) for p in (self.people, self.faces, self.annotated) if p is not None]
        for path, suffixes in ((self.people, (".csv",)), (self.faces, (".csv",)), (self.annotated, FORMATS)):
            if path is not None and Path(path).suffix.lower() not in suffixes:
                raise ValueError(f"{Path(path).name}: must end in {' or '.join(suffixes)}")
        if len({p.resolve() for p in paths}) < len(paths):
            raise ValueError("the output files must be different files")

    def check_apart_from(self, video: Path) -> None:
        """Refuse to write over the video being read, or into a folder that cannot take the files
        (found now, not after the whole video has been analysed)."""
        for path in (self.people, self.faces, self.annotated):
            if path is None:
                continue
            path = Path(path)
            if path.resolve() == Path(video).resolve():
                raise ValueError(f"{path.name} is the input video: refusing to write over it")
            folder = path.resolve().parent
            if not folder.is_dir() or not os.access(folder, os.W_OK):
                raise ValueError(f"cannot write {path}: {folder} is not a folder this user can write in")


@dataclass(frozen=True)
class VideoRun:
    """What a finished (or stopped) job did."""

    info: VideoInfo
    frames: int  # frames analysed (and written, when a copy was asked for)
    seconds: float  # wall time of the job
    people: list[PersonResult]
    spans: list[tuple[int, float, float]]  # (person, from, to seconds) in view: who was there when
    thumbnails: dict[int, np.ndarray] = field(default_factory=dict)  # person -> best view, when asked for

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def analyse_video(video: str | Path, analyzer: FaceAnalyzer, outputs: VideoOutputs,
                  settings: VideoSettings = VideoSettings(), progress: Progress | None = None,
                  thumbnails: bool = False, on_open: Callable[[VideoInfo], None] | None = None) -> VideoRun:
    """Analyse `video` into `outputs` (see the module docstring). Raises VideoError for a file
    that cannot be read, or stops being readable, after writing what was found before; Ctrl-C
    (KeyboardInterrupt) also leaves whole outputs. `on_open` sees the video's facts before the
    first frame (e.g. to refuse one too long)."""
    start = time.perf_counter()
    video = Path(video)
    outputs.check_apart_from(video)
    with VideoReader(video) as reader, _AheadDetector(analyzer.detector) as ahead:
        info = reader.info
        if on_open is not None:
            on_open(info)
        processor = FrameProcessor(FaceAnalyzer(analyzer.predictor, ahead, analyzer.answers), settings.live(info.fps),
                                   thumbnails=thumbnails)
        done = 0
        try:
            with ExitStack() as stack:
                faces = stack.enter_context(_FacesCsv(outputs.faces, video.name)) if outputs.faces else None
                encoder = None
                if outputs.annotated:
                    encoder = stack.enter_context(_Encoder(AnnotatedWriter(outputs.annotated, info.width, info.height,
                                                                           info.rate), outputs.show_probability))
                pending: deque[tuple[Frame, list[TrackState]]] = deque()
                try:
                    for frame, cut in stack.enter_context(closing(_scheduled(reader, settings, ahead))):
                        if cut:
                            processor.cut()
                        pending.append((frame, processor.analyse(frame.rgb, frame.time_s)))
                        ahead.forget(frame.rgb)
                        if len(pending) > settings.delay:
                            _emit(*pending.popleft(), processor, faces, encoder)
                        done += 1
                        if progress is not None:
                            progress(done, info.frames)
                finally:  # also on a damaged frame or Ctrl-C: what was analysed is written whole
                    while pending:
                        _emit(*pending.popleft(), processor, faces, encoder)
        except VideoError as exc:
            people = processor.people()
            write_people_csv(outputs.people, people)
            kept = f"{len(people)} {'person' if len(people) == 1 else 'people'}"
            raise VideoError(f"{exc}; {outputs.people.name} keeps the {kept} seen before that") from None
        except BaseException:
            write_people_csv(outputs.people, processor.people())
            raise
        people = processor.people()
        write_people_csv(outputs.people, people)
        pictures = {p.person: processor.thumbnail(p.person) for p in people} if thumbnails else {}
        return VideoRun(info, done, time.perf_counter() - start, people, processor.spans(),
                        {number: picture for number, picture in pictures.items() if picture is not None})


def _emit(frame: Frame, states: list[TrackState], processor: FrameProcessor, faces: "_FacesCsv | None",
          encoder: "_Encoder | None") -> None:
    """Write one frame's people (tracks given up as false alarms left out)."""
    shown = [state.result for state in states if processor.counted(state.result.number, frame.index)]
    if faces is not None:
        faces.write(frame, shown)
    if encoder is not None:
        encoder.put(frame.rgb, shown)


def _scheduled(reader: VideoReader, settings: VideoSettings, ahead: "_AheadDetector",
               size: int = QUEUE_FRAMES) -> Iterator[tuple[Frame, bool]]:
    """The reader's frames, each with whether a scene cut comes before it, decoded on a thread
    ahead of their use (at most `size` waiting). That thread also starts the detector on the
    frames the processor will detect on (every `every`-th, counted afresh from each cut, as
    `FrameProcessor` counts), so detection runs ahead, on other cores. Errors are raised here, in
    order, after the frames before them."""
    frames: queue.Queue = queue.Queue(size)
    stop = threading.Event()
    end = object()
    cuts = CutDetector() if settings.cuts else None

    def put(item) -> bool:
        while not stop.is_set():
            try:
                frames.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def decode() -> None:
        since = None  # frames since the last detection, as FrameProcessor counts them
        try:
            for frame in reader.frames():
                cut = cuts is not None and cuts.is_cut(frame.rgb)
                since = None if cut else since
                if since is None or since + 1 >= settings.every:
                    ahead.submit(frame.rgb, settings.min_score)
                    since = 0
                else:
                    since += 1
                if not put((frame, cut)):
                    return
            put(end)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)

    thread = threading.Thread(target=decode, name="video-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = frames.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()  # before the reader closes the file under it


class _AheadDetector:
    """The analyzer's detector, started on frames before the processor asks for their faces, on a
    pool of threads: a frame's faces do not depend on the frames before it (only tracking does),
    so two cores detect two frames at once. Asked for a frame it was not started on, it detects
    there and then."""

    def __init__(self, detector):
        self._detector = detector
        self._pool = ThreadPoolExecutor(max(1, min(os.cpu_count() or 1, 4)), thread_name_prefix="video-detect")
        self._started: dict[int, tuple[np.ndarray, float, Future]] = {}  # id(image) -> image, min_score, faces
        self._lock = threading.Lock()

    def submit(self, image: np.ndarray, min_score: float) -> None:
        future = self._pool.submit(self._detector.detect, image, min_score)
        with self._lock:
            self._started[id(image)] = (image, min_score, future)

    def detect(self, image: np.ndarray, min_score: float | None = None):
        with self._lock:
            started = self._started.pop(id(image), None)
        if started is not None and started[0] is image and started[1] == min_score:
            return started[2].result()
        return self._detector.detect(image, min_score)

    def forget(self, image: np.ndarray) -> None:
        """The frame is analysed: drop a detection the processor did not ask for."""
        with self._lock:
            started = self._started.pop(id(image), None)
        if started is not None:
            started[2].cancel()

    def __enter__(self) -> "_AheadDetector":
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class _Encoder:
    """Draws and encodes frames on a thread of its own; errors (a full disk) surface on the next
    `put` or at the end."""

    def __init__(self, writer: AnnotatedWriter, show_probability: bool):
        self._writer = writer
        self._show_probability = show_probability
        self._queue: queue.Queue = queue.Queue(QUEUE_FRAMES)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="video-encode", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    rgb, results = item
                    self._writer.write(draw_faces(rgb, results, self._show_probability) if results else rgb)
                except BaseException as exc:
                    self._error = exc

    def put(self, rgb: np.ndarray, results) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((rgb, results))

    def __enter__(self) -> "_Encoder":
        return self

    def __exit__(self, *exc) -> None:
        self._queue.put(None)
        self._thread.join()
        self._writer.close()
        if self._error is not None and exc[0] is None:
            raise self._error


class _FacesCsv:
    """faces.csv: one row per face shown on a frame, flushed about once a second of video."""

    def __init__(self, path: Path, video_name: str):
        self._handle = Path(path).open("w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._handle, fieldnames=FACE_COLUMNS, extrasaction="raise")
        self._writer.writeheader()
        self._video = video_name
        self._since_flush = 0

    def write(self, frame: Frame, results) -> None:
        for result in results:
            row = result.row(self._video)
            row.pop("face")
            self._writer.writerow({key: safe_cell(value) for key, value in
                                   {"frame": frame.index, "time_s": round(frame.time_s, 3), "person": result.number,
                                    **row}.items()})
        self._since_flush += 1
        if self._since_flush >= 30:
            self._handle.flush()
            self._since_flush = 0

    def __enter__(self) -> "_FacesCsv":
        return self

    def __exit__(self, *exc) -> None:
        self._handle.close()
