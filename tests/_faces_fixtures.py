"""Helpers for face and batch tests: real UTKFace crops pasted into synthetic photos, and a
folder of every kind of bad file a real photo folder contains. Nothing here is committed data:
crops are read from the dataset path at test time and written only to pytest's tmp dirs."""
from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from core.faces import align_face
from core.images import load_image



def utk_crops(folder: Path, count: int, gender: int | None = None, min_age: int = 18,
              max_age: int = 70, seed: int = 0) -> list[tuple[Path, int, int]]:
    """(path, age, gender) of `count` adult crops picked at random but reproducibly."""
    labelled = []
    for path in sorted(folder.glob("*_*_*_*.jpg.chip.jpg")):
        age, sex = path.name.split("_")[:2]
        if age.isdigit() and sex in ("0", "1") and min_age <= int(age) <= max_age and gender in (None, int(sex)):
            labelled.append((path, int(age), int(sex)))
    rng = np.random.default_rng(seed)
    return [labelled[i] for i in rng.choice(len(labelled), count, replace=False)]


def clear_faces(folder: Path, count: int, detector, gender: int | None = None, seed: int = 0,
                min_score: float = 0.7) -> list[tuple[Path, int, int]]:
    """Like `utk_crops`, but only crops whose face the detector finds confidently in the crop
    itself (about 9 in 10), for tests about what happens to a face once it is in a photo."""
    picked = []
    for path, age, sex in utk_crops(folder, 4 * count, gender=gender, seed=seed):
        faces = detector.detect(load_image(path))
        if faces and faces[0].score >= min_score:
            picked.append((path, age, sex))
            if len(picked) == count:
                return picked
    raise AssertionError(f"fewer than {count} clear faces among {4 * count} crops")


def background(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A photo-like backdrop: smooth colour blotches plus sensor noise, no faces."""
    rng = np.random.default_rng(seed)
    blotches = cv2.resize(rng.integers(40, 220, (6, 8, 3), dtype=np.uint8), (width, height),
                          interpolation=cv2.INTER_CUBIC)
    noise = rng.normal(0, 6, (height, width, 3))
    return np.clip(blotches + noise, 0, 255).astype(np.uint8)


def paste(canvas: np.ndarray, crop: np.ndarray, centre: tuple[float, float], side: float,
          angle: float = 0.0) -> np.ndarray:
    """Paste a square crop, scaled to `side` px and rotated by `angle` degrees (counter-
    clockwise), centred at `centre`; returns the 2x3 matrix from crop to canvas pixels.
    Shrinking uses an area filter first, as a camera would not alias a small face."""
    to_crop = np.eye(3)[:2]
    if side < crop.shape[0]:
        scale = round(side) / crop.shape[0]
        to_crop = np.array([[scale, 0, (scale - 1) / 2], [0, scale, (scale - 1) / 2]])
        crop = cv2.resize(crop, (round(side), round(side)), interpolation=cv2.INTER_AREA)
    size = crop.shape[0]
    matrix = cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2), angle, side / size)
    matrix[:, 2] += np.array(centre) - (size - 1) / 2
    height, width = canvas.shape[:2]
    mask = cv2.warpAffine(np.ones(crop.shape[:2], np.uint8), matrix, (width, height))
    canvas[mask > 0] = cv2.warpAffine(crop, matrix, (width, height), flags=cv2.INTER_LINEAR)[mask > 0]
    return matrix @ np.vstack([to_crop, [0, 0, 1]])


def pasted_and_aligned(folder: Path, count: int, detector, size: int, seed: int = 11
                       ) -> tuple[list[np.ndarray], np.ndarray]:
    """Clear UTKFace crops, and the same faces pasted into synthetic 640x480 photos (rotated
    ±12°, 130-330 px wide), found by `detector` and aligned to `size`: (crops, aligned faces)."""
    rng = np.random.default_rng(0)
    crops, aligned = [], []
    for i, (path, _, _) in enumerate(clear_faces(folder, count, detector, seed=seed)):
        crop, photo, side = load_image(path), background(640, 480, seed=i), rng.uniform(130, 330)
        centre = (rng.uniform(side / 2 + 5, 635 - side / 2), rng.uniform(side / 2 + 5, 475 - side / 2))
        paste(photo, crop, centre, side, rng.uniform(-12, 12))
        faces = detector.detect(photo)
        assert faces, f"no face found once {path.name} was pasted into a photo"
        crops.append(crop)
        aligned.append(align_face(photo, faces[0], size))
    return crops, np.stack(aligned)


def write_photo_folder(folder: Path, utkface: Path) -> Path:
    """A labelled folder (folder-csv) of photos: `one.jpg` with one face, `two.jpg` with two (the
    larger one more confident), `none.jpg` with none, and `unlabelled.jpg` whose row has no age."""
    from core.faces import FaceDetector

    (first, age, gender), (second, *_) = clear_faces(utkface, 2, FaceDetector(), seed=3)
    Image.fromarray(one_face_photo(load_image(first), side=240)).save(folder / "one.jpg", quality=92)
    two = background(800, 480, seed=5)
    paste(two, load_image(first), (220, 240), 260)
    paste(two, load_image(second), (600, 240), 150)
    Image.fromarray(two).save(folder / "two.jpg", quality=92)
    Image.fromarray(background(640, 480, seed=7)).save(folder / "none.jpg", quality=92)
    Image.fromarray(one_face_photo(load_image(second), seed=2)).save(folder / "unlabelled.jpg", quality=92)
    word = ("male", "female")[gender]
    (folder / "labels.csv").write_text(f"file,age,gender\none.jpg,{age},{word}\ntwo.jpg,{age},{word}\n"
                                       f"none.jpg,30,male\nunlabelled.jpg,,female\n")
    return folder


def jpeg_bytes(image: np.ndarray, quality: int = 92, exif_orientation: int | None = None) -> bytes:
    buffer = io.BytesIO()
    img = Image.fromarray(image)
    if exif_orientation is None:
        img.save(buffer, "JPEG", quality=quality)
    else:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        img.save(buffer, "JPEG", quality=quality, exif=exif)
    return buffer.getvalue()


def one_face_photo(crop: np.ndarray, width: int = 640, height: int = 480, side: float = 260,
                   seed: int = 0) -> np.ndarray:
    """A width x height photo with the crop pasted at a random spot, `side` px large."""
    rng = np.random.default_rng(seed)
    canvas = background(width, height, seed)
    margin = side / 2 + 2
    centre = (rng.uniform(margin, width - margin), rng.uniform(margin, height - margin))
    paste(canvas, crop, centre, side, angle=float(rng.uniform(-10, 10)))
    return canvas


def write_bad_folder(root: Path, face_photo: np.ndarray) -> dict[str, tuple[str, str]]:
    """Fill `root` with one good photo and every kind of awkward file; returns, per relative
    name, the expected status and a word the error text must contain ("" when no error)."""
    (root / "nested" / "deeper").mkdir(parents=True)
    expected: dict[str, tuple[str, str]] = {}

    def write(name: str, data: bytes, status: str, word: str = "") -> None:
        (root / name).write_bytes(data)
        expected[name] = (status, word)

    good = jpeg_bytes(face_photo)
    write("photo.jpg", good, "ok")
    write("empty.jpg", b"", "error", "empty")
    write("truncated.jpg", good[: len(good) // 3], "error", "truncated")
    write("text.png", b"this is not a picture\n", "error", "not a readable image")
    write("one_pixel.png", _png(np.zeros((1, 1, 3), np.uint8)), "error", "too small")
    write("gray16.png", _png16(face_photo), "ok")
    write("rgba.png", _png(np.dstack([face_photo, np.full(face_photo.shape[:2], 255, np.uint8)])), "ok")
    write("gray.png", _png(cv2.cvtColor(face_photo, cv2.COLOR_RGB2GRAY)), "ok")
    # stored lying on its side; EXIF orientation 6 says "rotate 90 degrees clockwise to view"
    write("exif_rotated.jpg", jpeg_bytes(np.ascontiguousarray(np.rot90(face_photo, 1)), exif_orientation=6), "ok")
    write("visages été 2023 – Zoë.jpg", good, "ok")
    write("nested/deeper/photo.JPEG", good, "ok")
    write("nested/blank.png", _png(np.full((300, 400, 3), 128, np.uint8)), "no_face")
    write("huge.png", _png_claiming(9000, 9000), "error", "too large")  # 81 megapixels
    (root / "notes.txt").write_text("not an image, not listed")
    os.symlink(root / "nested", root / "nested" / "deeper" / "loop")  # a folder link loop
    os.symlink(root / "missing.jpg", root / "dangling.jpg")
    expected["dangling.jpg"] = ("error", "cannot read")
    return expected


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def _png16(rgb: np.ndarray) -> bytes:
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257
    ok, data = cv2.imencode(".png", gray)
    assert ok
    return data.tobytes()


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height: what a decoder sees of a huge image
    before it spends memory on it (the pixel data is cut short)."""
    data = bytearray(_png(np.zeros((8, 8), np.uint8)))
    data[16:24] = struct.pack(">II", width, height)  # IHDR fields, after signature + chunk head
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)
