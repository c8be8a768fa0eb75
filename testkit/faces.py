"""Helpers for face and batch tests: real faces pasted into synthetic photos, and a folder of
every kind of bad file a real photo folder contains.

Two sources of real faces: the public-domain astronaut portrait in docs/assets (`astronaut_crops`:
her face as the product aligns it, and variants of it), for tests that need *a* face and must run
on a fresh clone; and UTKFace crops (`utk_crops`, `clear_faces`), for tests whose meaning needs
many different people of known age and gender. Nothing here is committed data: crops are read
from the repository's photo or the dataset path at test time and written only to pytest's tmp dirs."""
from __future__ import annotations

import functools
import io
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from core.detect.align import align_face, alignment_matrix
from core.detect.face import Face
from core.imaging.files import load_image

ASTRONAUT = Path(__file__).resolve().parent.parent / "docs" / "assets" / "astronaut.jpg"  # docs/assets/NOTICE.md
# Variants of the astronaut's aligned crop, one row per crop after her own (variant 0): mirrored,
# turned (degrees, counter-clockwise), zoomed about the centre, brighter or darker, and tinted
# (red, green, blue gains). Small enough that the crop stays framed about as UTKFace's crops are
# (those differ from our framing by 7 px in the median, test_yunet.py), large enough that every
# crop gives the detectors and a model different pixels.
ASTRONAUT_VARIANTS = (
    (True, 0.0, 1.00, 1.00, (1.00, 1.00, 1.00)),
    (False, 4.0, 0.96, 0.85, (1.00, 1.00, 1.00)),
    (True, -4.0, 1.04, 1.15, (1.00, 1.00, 1.00)),
    (False, 0.0, 1.00, 1.00, (1.12, 1.00, 0.88)),
    (True, 2.0, 0.94, 1.00, (0.88, 1.00, 1.12)),
    (False, -2.0, 1.06, 0.75, (1.00, 1.05, 1.00)),
    (True, 6.0, 1.00, 1.25, (0.95, 0.95, 1.00)),
    (False, -6.0, 0.98, 1.00, (1.05, 0.95, 0.90)),
    (True, 0.0, 1.08, 0.90, (0.92, 1.00, 0.96)),
    (False, 3.0, 1.02, 1.10, (1.00, 0.92, 1.08)),
    (True, -3.0, 0.92, 0.95, (1.10, 1.05, 0.95)),
)


@functools.cache
def _astronaut_crop() -> np.ndarray:
    """The astronaut's face found by the photos' detector and aligned to 200 px, as the product
    frames a face before the model sees it (and as UTKFace's crops are framed)."""
    from core.detect import detector_for

    photo = load_image(ASTRONAUT)
    faces = detector_for("photos").detect(photo)
    assert len(faces) == 1, f"{len(faces)} faces found in {ASTRONAUT.name}"
    crop = align_face(photo, faces[0], 200)
    crop.flags.writeable = False
    return crop


def astronaut_variant(index: int) -> np.ndarray:
    """Crop `index` of the astronaut: her aligned 200x200 face (0), then ASTRONAUT_VARIANTS in
    turn; a new RGB uint8 array each call."""
    crop = _astronaut_crop()
    if index == 0:
        return crop.copy()
    mirror, angle, zoom, brightness, gains = ASTRONAUT_VARIANTS[(index - 1) % len(ASTRONAUT_VARIANTS)]
    if mirror:
        crop = crop[:, ::-1]
    matrix = cv2.getRotationMatrix2D((99.5, 99.5), angle, zoom)
    crop = cv2.warpAffine(np.ascontiguousarray(crop), matrix, (200, 200), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    tinted = crop.astype(np.float32) * brightness * np.array(gains, np.float32)
    return np.clip(np.rint(tinted), 0, 255).astype(np.uint8)


def astronaut_crops(count: int, detector=None, seed: int = 0, min_score: float = 0.7) -> list[np.ndarray]:
    """`count` real 200x200 face crops that need no dataset: astronaut variants `seed`,
    `seed` + 1, ... (`count` + `seed` at most 1 + len(ASTRONAUT_VARIANTS), so no crop repeats).
    Like `clear_faces`, given a detector it asserts that each crop's face is found confidently
    in the crop itself. For tests that need a real face, not many different people."""
    assert seed + count <= 1 + len(ASTRONAUT_VARIANTS), f"only {1 + len(ASTRONAUT_VARIANTS)} astronaut crops"
    crops = [astronaut_variant(seed + i) for i in range(count)]
    for i, crop in enumerate(crops):
        if detector is not None:
            faces = detector.detect(crop)
            assert faces and faces[0].score >= min_score, f"astronaut variant {seed + i}: {faces}"
    return crops


def write_portraits(folder: Path, count: int) -> list[str]:
    """Photos of the whole astronaut portrait, shifted, scaled and mirrored, on plain backdrops:
    real faces the detector finds, as a labelled photo folder would hold them; the file names."""
    photo = Image.open(ASTRONAUT).convert("RGB")
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        side = 300 + 20 * i
        image = photo.resize((side, side)).transpose(Image.FLIP_LEFT_RIGHT) if i % 2 else photo.resize((side, side))
        canvas = Image.new("RGB", (side + 40, side + 40), (30 * i % 255, 90, 120))
        canvas.paste(image, (i * 4 % 40, i * 7 % 40))
        names.append(f"astro{i}.jpg")
        canvas.save(folder / names[-1], quality=90)
    return names


# Crop-pixel points spread over the face, to measure how far alignment moves them.
PROBES = np.array([[x, y, 1.0] for x in (50, 100, 150) for y in (50, 100, 150)])


def alignment_error(face: Face, crop_to_photo: np.ndarray) -> float:
    """Largest displacement (in 200 px crop pixels) between the original crop and the crop
    recovered from the photo: 0 when the alignment undoes the pasting exactly."""
    photo_to_crop = alignment_matrix(face, 200)
    round_trip = photo_to_crop @ np.vstack([crop_to_photo, [0, 0, 1]])
    return float(np.abs(PROBES @ round_trip.T - PROBES[:, :2]).max())


def pasted_faces_found(crops: list[np.ndarray], detector, side: float, angle: float,
                       shift: tuple[int, int]) -> list[tuple[Face, float]]:
    """Each face crop pasted alone into a 640x480 scene near its centre (moved by up to `shift`),
    found by `detector`: (the face found, its `alignment_error`) per photo. Asserts that exactly
    one face is found and that it lies where the face was pasted."""
    found = []
    for i, crop in enumerate(crops):
        photo = background(640, 480, seed=i)
        centre = (320 + shift[0] * (i % 3 - 1), 240 + shift[1] * (i % 2))
        to_photo = paste(photo, crop, centre, side, angle)
        faces = detector.detect(photo)
        assert len(faces) == 1
        face = faces[0]
        assert face.x < centre[0] < face.x + face.w and face.y < centre[1] < face.y + face.h
        assert face.left_eye[0] < face.right_eye[0]
        found.append((face, alignment_error(face, to_photo)))
    return found


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


def background(width: int, height: int, seed: int = 0, brightest: int = 220) -> np.ndarray:
    """A photo-like backdrop: smooth colour blotches plus sensor noise, no faces (flat grey
    would make detection unrealistically easy)."""
    rng = np.random.default_rng(seed)
    blotches = cv2.resize(rng.integers(40, brightest, (6, 8, 3), dtype=np.uint8), (width, height),
                          interpolation=cv2.INTER_CUBIC)
    noise = rng.normal(0, 6, (height, width, 3))
    return np.clip(blotches + noise, 0, 255).astype(np.uint8)


def feather_mask(size: int) -> np.ndarray:
    """Soft elliptical alpha (size x size x 1): pasted faces have no hard square edge."""
    mask = np.zeros((size, size), np.float32)
    cv2.ellipse(mask, (size // 2, size // 2), (int(size * 0.46), int(size * 0.5)), 0, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(mask, (0, 0), size * 0.04)[:, :, None]


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


def pasted_face_box(own: Face, to_photo: np.ndarray, width: int, height: int) -> np.ndarray:
    """The box a crop's own detection `own` covers once pasted by `to_photo` (what `paste`
    returns): the bounds of its carried corners, clipped to the photo; (x0, y0, x1, y1)."""
    corners = np.array([[own.x, own.y, 1], [own.x + own.w, own.y, 1], [own.x, own.y + own.h, 1],
                        [own.x + own.w, own.y + own.h, 1]]) @ to_photo.T
    return np.clip([*corners.min(axis=0), *corners.max(axis=0)], 0, [width, height, width, height])


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


def write_photo_folder(folder: Path) -> Path:
    """A labelled folder (folder-csv) of photos: `one.jpg` with one face, `two.jpg` with two (the
    larger one more confident), `none.jpg` with none, and `unlabelled.jpg` whose row has neither an
    age nor a gender. The faces are astronaut crops, so no dataset is needed; their labels (40,
    female) are for plumbing: no test scores a model's accuracy on them."""
    from core.detect.blazeface import BlazeFaceDetector

    first, second = astronaut_crops(2, BlazeFaceDetector(), seed=3)
    Image.fromarray(one_face_photo(first, side=240)).save(folder / "one.jpg", quality=92)
    two = background(800, 480, seed=5)
    paste(two, first, (220, 240), 260)
    paste(two, second, (600, 240), 150)
    Image.fromarray(two).save(folder / "two.jpg", quality=92)
    Image.fromarray(background(640, 480, seed=7)).save(folder / "none.jpg", quality=92)
    Image.fromarray(one_face_photo(second, seed=2)).save(folder / "unlabelled.jpg", quality=92)
    (folder / "labels.csv").write_text("file,age,gender\none.jpg,40,female\ntwo.jpg,40,female\n"
                                       "none.jpg,30,male\nunlabelled.jpg,,\n")
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


FACE_FREE_KINDS = ("blotches", "value_noise", "gradient", "shapes", "stripes", "street", "cells")


def face_free(width: int, height: int, seed: int) -> np.ndarray:
    """A generated image that contains no face, of one of FACE_FREE_KINDS (seed % 7 picks
    which): the kinds of structure a detector might mistake for a face (blobs, edges, dark
    spots in pairs, repeated patterns, man-made scenes), made with numpy and OpenCV only.
    Used to choose and check detection thresholds, never AFW."""
    rng = np.random.default_rng(seed)
    kind = FACE_FREE_KINDS[seed % len(FACE_FREE_KINDS)]
    if kind == "blotches":
        image = background(width, height, seed).astype(np.float64)
    elif kind == "value_noise":  # several octaves of smooth noise, like foliage, clouds or rock
        image = sum(cv2.resize(rng.uniform(0, 255, (2 ** o + 1, 2 ** o + 1, 3)), (width, height),
                               interpolation=cv2.INTER_CUBIC) / 2 ** (o - 1) for o in range(1, 7)) / 2
    elif kind == "gradient":
        ys, xs = np.mgrid[0:height, 0:width] / max(width, height)
        angle, colours = rng.uniform(0, np.pi), rng.uniform(0, 255, (2, 3))
        t = np.clip((np.cos(angle) * xs + np.sin(angle) * ys) * rng.uniform(0.5, 2), 0, 1)[..., None]
        if rng.random() < 0.5:  # radial instead
            t = np.clip(np.hypot(xs - rng.random(), ys - rng.random()) * 2, 0, 1)[..., None]
        image = colours[0] * (1 - t) + colours[1] * t
    elif kind == "stripes":  # stripes, checks and grids at a random angle and period
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
        angle, period = rng.uniform(0, np.pi), rng.uniform(6, 80)
        u, v = np.cos(angle) * xs + np.sin(angle) * ys, -np.sin(angle) * xs + np.cos(angle) * ys
        wave = np.sin(2 * np.pi * u / period)
        if rng.random() < 0.5:
            wave = wave * np.sin(2 * np.pi * v / period)
        colours = rng.uniform(0, 255, (2, 3))
        image = np.where((wave > 0)[..., None], colours[0], colours[1])
    elif kind == "cells":  # thresholded blurred noise: spots, cells, camouflage
        noise = cv2.GaussianBlur(rng.normal(0, 1, (height, width)), (0, 0), rng.uniform(2, 12))
        colours = rng.uniform(0, 255, (3, 3))
        level = np.digitize(noise, np.quantile(noise, [0.33, 0.66]))
        image = colours[level]
    else:
        image = _drawn(kind, width, height, rng)
    noise = rng.normal(0, rng.uniform(0, 8), (height, width, 3))
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def _drawn(kind: str, width: int, height: int, rng) -> np.ndarray:
    """Rendered shapes on a plain backdrop ("shapes"), or a street-like scene of sky, ground,
    buildings with windows, and trees ("street")."""
    def colour():
        return tuple(int(c) for c in rng.integers(0, 256, 3))

    image = np.full((height, width, 3), colour(), np.uint8)
    if kind == "shapes":
        for _ in range(rng.integers(5, 40)):
            centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            size = int(rng.integers(4, max(width, height) // 4))
            thickness = -1 if rng.random() < 0.6 else int(rng.integers(1, 6))
            pick = rng.integers(4)
            if pick == 0:
                cv2.circle(image, centre, size, colour(), thickness)
            elif pick == 1:
                cv2.ellipse(image, centre, (size, int(rng.integers(2, size + 3))), float(rng.uniform(0, 180)),
                            0, 360, colour(), thickness)
            elif pick == 2:
                cv2.rectangle(image, centre, (centre[0] + size, centre[1] + int(rng.integers(2, size + 3))),
                              colour(), thickness)
            else:
                points = rng.integers(0, [width, height], (int(rng.integers(3, 7)), 2)).astype(np.int32)
                cv2.fillPoly(image, [points], colour())
        return image.astype(np.float64)
    horizon = int(height * rng.uniform(0.3, 0.7))
    image[horizon:] = colour()
    x = 0
    while x < width:  # buildings with rows of windows
        w, h = int(rng.integers(40, 200)), int(rng.integers(60, horizon + 40))
        cv2.rectangle(image, (x, horizon - h), (x + w, horizon + 20), colour(), -1)
        window, gap = int(rng.integers(6, 20)), int(rng.integers(6, 20))
        lit = colour()
        for wy in range(horizon - h + gap, horizon - window, window + gap):
            for wx in range(x + gap, x + w - window, window + gap):
                cv2.rectangle(image, (wx, wy), (wx + window, wy + window), lit, -1)
        x += w + int(rng.integers(0, 30))
    for _ in range(rng.integers(0, 6)):  # trees
        tx, ty = int(rng.integers(0, width)), int(rng.integers(horizon, height))
        cv2.line(image, (tx, ty), (tx, ty - 60), (60, 40, 20), 6)
        cv2.circle(image, (tx, ty - 70), int(rng.integers(15, 40)), (30, int(rng.integers(80, 160)), 30), -1)
    return image.astype(np.float64)
