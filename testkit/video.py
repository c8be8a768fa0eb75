"""Synthetic camera video made at run time from real UTKFace faces (never stored in the repo).

Used by tests/test_live.py, tests/test_live_browser.py (as a .y4m fake camera) and
bench/live.py, so all three push the same kind of picture through the live pipeline: real faces
moving across a textured background, each in its own horizontal lane so they never overlap.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from testkit.faces import background, feather_mask

WIDTH, HEIGHT = 640, 480


@dataclass(frozen=True)
class SceneFace:
    """Where one pasted face is on a frame (the pasted square, not the detector's box)."""

    index: int  # which of the scene's faces
    x: int
    y: int
    size: int

    def contains(self, px: float, py: float) -> bool:
        return self.x <= px < self.x + self.size and self.y <= py < self.y + self.size


def pick_faces(utkface_dir: Path, count: int, seed: int = 0) -> list[np.ndarray]:
    """`count` adult UTKFace crops (RGB), alternating male and female, chosen reproducibly.

    Adults 20-60 keep faces large and frontal enough for the short-range detector on any seed."""
    rng = np.random.default_rng(seed)
    paths = sorted(utkface_dir.glob("*.jpg"))
    by_gender: dict[str, list[Path]] = {"0": [], "1": []}
    for path in paths:
        parts = path.name.split("_")
        if len(parts) >= 4 and parts[1] in by_gender and 20 <= int(parts[0]) <= 60:
            by_gender[parts[1]].append(path)
    chosen = [by_gender[str(i % 2)][int(rng.integers(len(by_gender[str(i % 2)])))] for i in range(count)]
    return [cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB) for path in chosen]


def scene(faces: list[np.ndarray], frames: int, size: int = 150, speed: float = 5.0,
          appear_every: int = 0, seed: int = 0) -> Iterator[tuple[np.ndarray, list[SceneFace]]]:
    """Frames (640x480 RGB) with the faces moving left and right, bouncing off the edges.

    Face i walks lane i (lanes split the height); with `appear_every` > 0 face i enters only at
    frame i * appear_every, so the face count grows over the clip.
    """
    rng = np.random.default_rng(seed)
    base = background(WIDTH, HEIGHT, seed, brightest=200)
    lane = HEIGHT // max(1, len(faces))
    size = min(size, lane)
    mask = feather_mask(size)
    sprites = [cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) for face in faces]
    starts = rng.uniform(0, WIDTH - size, len(faces))
    directions = rng.choice([-1.0, 1.0], len(faces))
    for t in range(frames):
        frame = base.astype(np.float32)
        placed = []
        for i, sprite in enumerate(sprites):
            if t < i * appear_every:
                continue
            x = _bounce(starts[i] + directions[i] * speed * t, WIDTH - size)
            y = int(i * lane + (lane - size) / 2 + 4 * np.sin(t / 7 + i))
            y = min(max(y, 0), HEIGHT - size)
            region = frame[y:y + size, x:x + size]
            region[:] = region * (1 - mask) + sprite * mask
            placed.append(SceneFace(i, x, y, size))
        yield frame.astype(np.uint8), placed


def _bounce(position: float, limit: int) -> int:
    """Position reflected into [0, limit], like a ball between two walls."""
    period = 2 * limit
    p = position % period
    return int(p if p <= limit else period - p)


def write_y4m(frames: list[np.ndarray], path: Path, fps: int = 15) -> Path:
    """Write RGB frames as a YUV4MPEG2 (4:2:0) file, the format Chromium's fake camera reads."""
    height, width = frames[0].shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path
