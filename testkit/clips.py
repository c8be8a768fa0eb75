"""Recorded-video clips made at run time: people walking across a backdrop, entering and leaving
the picture, passing behind a pillar, and scene cuts, written as real video files (H.264 MP4 by
default) through PyAV.

For tests/test_video.py, tests/test_video_browser.py and bench/video.py. Each `Clip` is a
script with a known answer: every `Walker` is one person, so a correct count is
`len(clip.walkers)` and the order of appearance is the walkers' order of entry. Faces come from
docs/assets/astronaut.jpg (public domain, in the repository, so tests run from a fresh clone)
in a few tints and mirror images, or from UTKFace crops (`testkit.video.pick_faces`) when the
dataset is there; nothing made here is committed.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from testkit.faces import ASTRONAUT, background, feather_mask

ASTRONAUT_FACE = (133, 35, 180)  # x, y, side of the square around her face (hair and chin included)
# (red, green, blue) gains and mirroring of the astronaut variants: different-looking sprites
TINTS = ((1.0, 1.0, 1.0, False), (0.85, 0.95, 1.15, True), (1.15, 1.0, 0.85, False), (0.9, 0.9, 0.9, True),
         (1.05, 0.9, 1.0, False), (1.0, 1.1, 0.95, True))


def astronaut_faces(count: int) -> list[np.ndarray]:
    """`count` RGB face sprites made from the public-domain astronaut portrait."""
    image = cv2.cvtColor(cv2.imread(str(ASTRONAUT)), cv2.COLOR_BGR2RGB)
    x, y, side = ASTRONAUT_FACE
    face = image[y:y + side, x:x + side].astype(np.float32)
    sprites = []
    for i in range(count):
        r, g, b, mirror = TINTS[i % len(TINTS)]
        tinted = np.clip(face * np.array([r, g, b], np.float32), 0, 255).astype(np.uint8)
        sprites.append(tinted[:, ::-1].copy() if mirror else tinted)
    return sprites


@dataclass(frozen=True)
class Walker:
    """One person: their face's centre walks in a straight line from (x0, y) at `enter_s` to
    (x1, y) at `leave_s` (fractions of the frame; outside 0..1 is off the picture, so a walker
    can come in from an edge and go out at another). `face` picks the sprite."""

    face: int
    enter_s: float
    leave_s: float
    x0: float
    x1: float
    y: float
    size: int  # px, side of the pasted face square (the face itself is about 0.55 of it)

    def centre(self, t: float, width: int, height: int) -> tuple[float, float] | None:
        if not self.enter_s <= t < self.leave_s:
            return None
        share = (t - self.enter_s) / (self.leave_s - self.enter_s)
        return (self.x0 + (self.x1 - self.x0) * share) * width, self.y * height


@dataclass(frozen=True)
class Pillar:
    """A full-height post in front of everyone, from x (fraction of the width), `width` px wide."""

    x: float
    width: int


@dataclass(frozen=True)
class Clip:
    width: int
    height: int
    fps: float
    seconds: float
    walkers: tuple[Walker, ...]
    pillars: tuple[Pillar, ...] = ()
    cuts: tuple[float, ...] = ()  # seconds at which the scene changes (a new backdrop)
    seed: int = 0

    @property
    def frames(self) -> int:
        return int(round(self.seconds * self.fps))

    def hidden_seconds(self, walker: Walker) -> float:
        """The longest time the walker's face is at least half hidden, behind a pillar or a walker
        drawn after them, while on screen."""
        longest = run = 0.0
        for index in range(self.frames):
            run = run + 1 / self.fps if self.hidden_share(walker, index / self.fps) >= 0.5 else 0.0
            longest = max(longest, run)
        return longest

    def hidden_share(self, walker: Walker, t: float) -> float:
        """How much of the walker's face (the middle 0.55 of its square) is behind a pillar or
        behind a walker drawn over it at time t (0 when off screen)."""
        centre = walker.centre(t, self.width, self.height)
        if centre is None:
            return 0.0
        face = walker.size * 0.55
        shares = [_covered(centre[0], face, pillar, self.width) for pillar in self.pillars]
        for other in self.walkers[self.walkers.index(walker) + 1:]:
            theirs = other.centre(t, self.width, self.height)
            if theirs is not None:
                overlap = [max(0.0, min(mine + face / 2, their + other.size / 2) - max(mine - face / 2, their - other.size / 2))
                           for mine, their in zip(centre, theirs)]
                shares.append(overlap[0] * overlap[1] / face ** 2)
        return max(shares, default=0.0)


def _covered(cx: float, face: float, pillar: Pillar, width: int) -> float:
    """Share of a face (width `face`, centred at cx) behind the pillar."""
    left, right = pillar.x * width, pillar.x * width + pillar.width
    overlap = max(0.0, min(cx + face / 2, right) - max(cx - face / 2, left))
    return overlap / face


def render(clip: Clip, faces: list[np.ndarray]) -> Iterator[tuple[np.ndarray, list[int]]]:
    """The clip's frames (RGB) and, for each, the walkers whose face is in view (in the picture
    and less than half hidden)."""
    sprites = {}
    for walker in clip.walkers:
        if walker.size not in sprites:
            sprites[walker.size] = feather_mask(walker.size)
    scaled = {(i, size): cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
              for i, face in enumerate(faces) for size in sprites}
    backdrops = [background(clip.width, clip.height, clip.seed + scene, brightest=200) for scene in range(len(clip.cuts) + 1)]
    post = np.array([90, 80, 70], np.float32)
    for index in range(clip.frames):
        t = index / clip.fps
        scene = sum(t >= cut for cut in clip.cuts)
        frame = backdrops[scene].astype(np.float32)
        visible = []
        for number, walker in enumerate(clip.walkers):
            centre = walker.centre(t, clip.width, clip.height)
            if centre is None:
                continue
            size = walker.size
            x, y = int(round(centre[0] - size / 2)), int(round(centre[1] - size / 2))
            x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + size, clip.width), min(y + size, clip.height)
            if x1 <= x0 or y1 <= y0:
                continue
            sprite = scaled[(walker.face % len(faces), size)][y0 - y:y1 - y, x0 - x:x1 - x]
            alpha = sprites[size][y0 - y:y1 - y, x0 - x:x1 - x]
            frame[y0:y1, x0:x1] = frame[y0:y1, x0:x1] * (1 - alpha) + sprite * alpha
            face = size * 0.55
            inside = min(centre[0] + face / 2, clip.width) - max(centre[0] - face / 2, 0)
            if inside >= 0.75 * face and clip.hidden_share(walker, t) < 0.5:
                visible.append(number)
        for pillar in clip.pillars:
            left = int(pillar.x * clip.width)
            frame[:, left:left + pillar.width] = post
        yield frame.astype(np.uint8), visible


def write_video(frames: Iterable[np.ndarray], path: Path, fps: float, codec: str = "libx264") -> Path:
    """RGB frames into a video file (H.264 MP4 by default; the container follows the suffix)."""
    import av

    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as container:
        stream = None
        for index, frame in enumerate(frames):
            if stream is None:
                stream = container.add_stream(codec, rate=rate)
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = "yuv420p"
                if codec == "libx264":
                    stream.options = {"preset": "ultrafast", "crf": "18"}
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            picture.pts = index
            for packet in stream.encode(picture):
                container.mux(packet)
        if stream is not None:
            for packet in stream.encode(None):
                container.mux(packet)
    return path


def write_clip(clip: Clip, faces: list[np.ndarray], path: Path, codec: str = "libx264") -> Path:
    return write_video((frame for frame, _ in render(clip, faces)), path, clip.fps, codec)


def write_audio_only(path: Path, seconds: float = 1.0) -> Path:
    """A file with a sound track and no picture (an .m4a of AAC silence)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        block = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        block.sample_rate = 44100
        for index in range(int(seconds * 44100 / 1024)):
            block.pts = index * 1024
            for packet in stream.encode(block):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def entrance(width: int = 640, height: int = 360, fps: float = 15.0, size: int = 150, pillar_px: int = 130,
             seed: int = 0) -> Clip:
    """Three people in 8 s: A walks in from the left, passes behind a pillar (at least half hidden
    for 0.7 s) and out at the right; B comes in from the right while A is still there, passes
    the pillar too and is near the left edge when the scene cuts, and C stands just there after
    the cut. Order of appearance: A, B, C."""
    lane_a, lane_b = 0.27, 0.73
    walkers = (Walker(0, 0.3, 4.3, -0.1, 1.1, lane_a, size),
               Walker(1, 1.5, 5.5, 1.1, 0.1, lane_b, size),
               Walker(2, 5.5, 8.0, 0.1, 0.25, lane_b, size))
    return Clip(width, height, fps, 8.0, walkers, (Pillar(0.5 - pillar_px / 2 / width, pillar_px),), (5.5,), seed)


# The crowd: three lanes, far to near (top to bottom), each walked one way only so that nobody
# in a lane overtakes anybody. Slots (lane, first entry, last moment) spawn a walker every
# CROSSING_S seconds; the five windows nest, so 1, then up to 5 people are in view, then 1 again.
CROSSING_S = 8.0
CROWD_LANES = ((0.18, 140, 1), (0.45, 200, -1), (0.77, 280, 1))  # (y, sprite px at 1280x720, direction)
CROWD_SLOTS = ((0, 0.0, 60.0), (1, 6.0, 54.0), (2, 12.0, 48.0), (0, 18.0, 42.0), (1, 24.0, 36.0))


def crowd(width: int = 1280, height: int = 720, fps: float = 30.0, seconds: float = 60.0, seed: int = 0) -> Clip:
    """People crossing a 60 s scene in three lanes at three distances (faces of about 75, 110 and
    155 px at 1280x720), from one person in view to five and back (bench/video.py's speed clip)."""
    scale = seconds / 60.0
    walkers = []
    for lane, first, last in CROWD_SLOTS:
        y, size, direction = CROWD_LANES[lane]
        start = first * scale
        while start + CROSSING_S <= last * scale + 1e-9:
            x0, x1 = (-0.12, 1.12) if direction > 0 else (1.12, -0.12)
            walkers.append(Walker(len(walkers), start, start + CROSSING_S, x0, x1, y, round(size * width / 1280)))
            start += CROSSING_S
    walkers.sort(key=lambda walker: walker.enter_s)
    return Clip(width, height, fps, seconds, tuple(walkers), seed=seed)


def crossing(width: int = 640, height: int = 360, fps: float = 15.0, size: int = 150, offset: float = 0.0,
             seed: int = 0) -> Clip:
    """Two people walking towards each other at the same height: where they meet, the second
    passes in front of the first and hides them for a moment (`offset`: how far apart their
    lanes are, as a share of the height). Two people."""
    y = 0.5
    return Clip(width, height, fps, 6.0, (Walker(0, 0.0, 6.0, -0.1, 1.1, y - offset / 2, size),
                                          Walker(1, 0.0, 6.0, 1.1, -0.1, y + offset / 2, size)), seed=seed)
