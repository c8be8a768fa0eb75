"""Reading recorded video: any file FFmpeg decodes (through PyAV, which streamlit-webrtc already
brings) as numbered RGB frames with their times, and every way a file can be bad as one
`VideoError` sentence.

Frames are decoded one at a time and never kept, so memory does not grow with the video's
length. A file that stops early is caught two ways: FFmpeg raises on a damaged packet (an MP4 cut
short), or the frames simply end before the length the container declared (a Matroska/WebM cut
short decodes without complaint); both end with `VideoError` after the frames before the damage
were delivered, so the caller keeps what it made of them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

# A video whose frames end this long before the length its container declares is truncated. The
# container's length can include an audio track that runs on a little after the picture.
SHORT_BY_SECONDS = 1.0
SHORT_BY_SHARE = 0.02
SHORT_BY_FRAMES = 2  # when the container counts its frames (MP4), the count is exact


class VideoError(ValueError):
    """A file that cannot be read as a video, or stops being readable part way; the message is
    one sentence naming the file."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about the picture, before any frame is decoded."""

    path: str
    width: int
    height: int
    fps: float  # average frame rate; 25 when the file does not say
    frames: int | None  # frames the container declares (MP4 does), else estimated from the duration
    duration_s: float | None  # of the video stream, or of the file when the stream does not say
    codec: str
    counted: bool  # `frames` is the container's own count, not an estimate

    @property
    def rate(self) -> Fraction:
        """The frame rate as a fraction (30000/1001 for NTSC's 29.97), for writing a copy."""
        return Fraction(self.fps).limit_denominator(1001)


@dataclass(frozen=True)
class Frame:
    index: int  # 0-based, in decoding order
    time_s: float  # presentation time, from the first frame's
    rgb: np.ndarray  # HxWx3 uint8


class VideoReader:
    """One open video file: `info` at once, `frames()` decoded on demand. Use as a context
    manager, or call `close()`."""

    def __init__(self, path: str | Path):
        import av

        self.path = Path(path)
        name = self.path.name
        if not self.path.is_file():
            raise VideoError(f"no such video file: {path}")
        try:
            self._container = av.open(str(self.path), metadata_errors="ignore")
        except av.error.FFmpegError as exc:
            raise VideoError(f"{name} is not a video this tool can read, or is damaged or cut short "
                             f"({_reason(exc)})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise VideoError(f"cannot read {name}: {exc}") from None
        if not self._container.streams.video:
            audio = " (it holds only sound)" if self._container.streams.audio else ""
            self.close()
            raise VideoError(f"{name} has no video stream{audio}")
        stream = self._container.streams.video[0]
        if not stream.codec_context or not stream.width or not stream.height:
            self.close()
            raise VideoError(f"{name}: its video stream cannot be decoded (unknown codec or no picture size)")
        stream.thread_type = "AUTO"  # FFmpeg decodes on its own threads, outside Python's lock
        self._stream = stream
        self.info = _info(self.path, stream, self._container)

    def frames(self) -> Iterator[Frame]:
        """Every frame, in order; raises VideoError where the file is damaged or ends early (after
        yielding the frames before that point)."""
        import av

        index, last_time, start = 0, 0.0, None
        try:
            for decoded in self._container.decode(self._stream):
                if decoded.time is None:
                    time_s = index / self.info.fps
                else:  # from the first frame: some files' clocks start elsewhere (MPEG-TS, edited MP4s)
                    start = float(decoded.time) if start is None else start
                    time_s = max(0.0, float(decoded.time) - start)
                last_time = max(last_time, time_s)
                yield Frame(index, time_s, decoded.to_ndarray(format="rgb24"))
                index += 1
        except av.error.FFmpegError as exc:
            raise VideoError(f"{self.path.name} is damaged or truncated after frame {index} ({last_time:.1f} s): "
                             f"{_reason(exc)}") from None
        if index == 0:
            raise VideoError(f"{self.path.name}: no frame could be decoded")
        self._check_complete(index, last_time)

    def _check_complete(self, decoded: int, last_time: float) -> None:
        info = self.info
        if info.counted and info.frames is not None:
            short = decoded < info.frames - SHORT_BY_FRAMES
        elif info.duration_s:
            end = last_time + 1 / info.fps
            short = end < info.duration_s - max(SHORT_BY_SECONDS, SHORT_BY_SHARE * info.duration_s)
        else:
            short = False
        if short:
            declared = f"{info.frames} frames" if info.counted else f"{info.duration_s:.1f} s"
            raise VideoError(f"{self.path.name} is truncated: its frames end after frame {decoded} "
                             f"({last_time:.1f} s), but the file declares {declared}")

    def close(self) -> None:
        container, self._container = getattr(self, "_container", None), None
        if container is not None:
            container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _info(path: Path, stream, container) -> VideoInfo:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate and 0 < float(rate) < 1000 else 25.0
    duration = None
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / 1_000_000  # AV_TIME_BASE
    counted = bool(stream.frames)
    frames = int(stream.frames) if counted else (math.ceil(duration * fps) if duration else None)
    return VideoInfo(str(path), stream.width, stream.height, fps, frames, duration, stream.codec_context.name, counted)


def _reason(exc: Exception) -> str:
    """FFmpeg's words without its errno and the file name it repeats."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).rstrip(".").lower()
