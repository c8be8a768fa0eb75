"""Small synthetic datasets written to disk, so core tests run without the real dataset."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def synthetic_face(age: int, gender: int, size: int = 48, seed: int = 0) -> np.ndarray:
    """An image whose brightness encodes gender and whose stripe count grows with age:
    learnable signals, so a tiny model's loss must fall when it trains on them."""
    rng = np.random.default_rng(seed)
    base = 170 if gender else 70
    image = np.full((size, size, 3), base, np.float64)
    stripes = 1 + age // 15
    image[:, :, 1] += 40 * np.sin(np.linspace(0, np.pi * stripes, size))[None, :]
    image += rng.normal(0, 8, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_utkface_folder(folder: Path, n: int = 48, seed: int = 0) -> list[tuple[str, int, int, int]]:
    """n UTKFace-named JPEGs with varied labels; returns (name, age, gender, race) per file."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        age, gender, race = int(rng.integers(1, 90)), i % 2, int(rng.integers(0, 5))
        name = f"{age}_{gender}_{race}_2017010{i:010d}.jpg.chip.jpg"
        Image.fromarray(synthetic_face(age, gender, seed=i)).save(folder / name, "JPEG", quality=95)
        rows.append((name, age, gender, race))
    return rows
