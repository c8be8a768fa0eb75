"""Decoding and resizing images, robust to what real folders contain.

Every image that enters the project (training crops, photos, video frames) passes through
`load_image`, so one function decides how formats, EXIF rotation, alpha, grayscale and 16-bit
data become plain RGB uint8 arrays. Normalisation to [0, 1] lives inside the model itself, so
callers always hand it uint8 pixels.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import io
import stat
import threading
from contextlib import nullcontext
from pathlib import Path
from typing import Union

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
# Photos in formats this project cannot decode: a batch lists them (a row saying so) rather than
# pass over them in silence. HEIC is the iPhone's default; pillow-heif would decode it, but its
# wheels bundle the GPL-licensed x265 encoder, which this project does not take on.
UNSUPPORTED_EXTENSIONS = (".heic", ".heif")
_HEIF_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"heim": "HEIC", b"heis": "HEIC", b"hevc": "HEIC",
                b"hevx": "HEIC", b"mif1": "HEIF", b"msf1": "HEIF"}
MAX_PIXELS = 80_000_000  # refuse images larger than this: decoding them would need GBs
MIN_SIDE = 8  # smaller images cannot contain a usable face
MAX_FILE_BYTES = 512 * 2**20  # larger "images" are not read at all (they would be read whole)
# Decoding a PNG, TIFF or WebP takes its full size in memory (4 bytes a pixel in Pillow, 8 for
# WebP while libwebp hands it over): up to 640 MB at MAX_PIXELS. Such large decodes run one at a
# time per process, whatever the threads of a batch or the sessions of a server, so they cannot
# add up; smaller ones run freely. `bench/uploads.py` measures what an upload costs a server.
LARGE_DECODE_BYTES = 64 * 2**20
_large_decodes = threading.Lock()
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}  # others: 4
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}  # EXIF orientation -> the turn that makes the image upright
_ORIENTATION = 0x0112  # the EXIF tag saying how the camera was turned

ImageSource = Union[str, Path, bytes]

# Our MAX_PIXELS check below runs as soon as Pillow has read the header, before any pixel is
# decoded, so Pillow's own decompression-bomb check adds no safety; it only raised first (for
# images over ~89 megapixels) with a message that hides the size. All decoding in the project
# goes through this module, so switching Pillow's check off here leaves no image unchecked.
Image.MAX_IMAGE_PIXELS = None


def _malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


_MALLOC_TRIM = _malloc_trim()


def release_memory() -> None:
    """Hand memory freed by large images back to the system. glibc keeps what a thread freed in
    that thread's own arena, where other threads cannot reuse it, so without this a server that
    decoded one 80-megapixel upload on each of its threads stayed gigabytes larger (1.7 GB after
    one such photo). A few milliseconds; called after every large decode and every analysis."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class ImageError(ValueError):
    """An image could not be used; the message says why in plain words."""


def is_image_file(path: Path) -> bool:
    """Whether the file's extension is one of the formats this project decodes."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def is_listed_image(path: Path) -> bool:
    """Whether a batch lists the file: an image it decodes, or a photo format it names as unsupported."""
    return path.suffix.lower() in IMAGE_EXTENSIONS + UNSUPPORTED_EXTENSIONS


def load_image(source: ImageSource, max_side: int | None = None) -> np.ndarray:
    """Decode a file or bytes into an RGB uint8 array, upright as the camera meant it.

    `max_side` lets decoding downscale: JPEGs on the fly (cheap and memory-bounded for huge
    photos), other formats by whole factors right after decoding; the result may still be up
    to twice `max_side` (or more, for other formats up to 3200 px), callers resize further.
    """
    return decode_image(source, max_side)[0]


def decode_image(source: ImageSource, max_side: int | None = None) -> tuple[np.ndarray, int]:
    """`load_image`, plus the longer side of the stored image (before any `max_side` downscaling),
    which callers need to report face boxes in the original's pixels."""
    data = _read(Path(source)) if isinstance(source, (str, Path)) else source
    if not data:
        raise ImageError("empty file (0 bytes)")
    try:
        img = Image.open(io.BytesIO(data))
        width, height = img.size
        stored_side = max(width, height)
        if width * height > MAX_PIXELS:
            raise ImageError(f"image too large ({width} x {height}, over {MAX_PIXELS // 1_000_000} megapixels)")
        if max_side and img.format == "JPEG":
            img.draft("RGB", (max_side, max_side))
        array = _plain_jpeg(data, img) if img.size == (width, height) else None  # None: draft reduced it
        if array is None:
            with _large_decodes if _decoded_bytes(img) > LARGE_DECODE_BYTES else nullcontext():
                try:
                    array = _decode(img, data, max_side)
                finally:
                    img.close()  # its pixels go now, before the next large decode may start
                    release_memory()
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        unsupported = _heif_kind(data)
        if unsupported:
            raise ImageError(f"unsupported format: {unsupported} (convert it to JPEG)") from exc
        raise ImageError("not a readable image (unknown or unsupported format)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"corrupt or truncated image ({_short(exc)})") from exc
    if min(array.shape[:2]) < MIN_SIDE:
        raise ImageError(f"image too small ({array.shape[1]}x{array.shape[0]} pixels)")
    return array, stored_side


def _decode(img: Image.Image, data: bytes, max_side: int | None) -> np.ndarray:
    """Pixels of an opened image, upright. One more than twice `max_side` a side (a large PNG,
    TIFF or WebP) is shrunk by a whole factor as soon as it is decoded, before any copy or
    conversion of it (which cost 1-2 GB for an 80-megapixel PNG); smaller ones are converted as
    they are (the same pixels as always). Large WebPs are decoded by OpenCV, shrunk by a power
    of two (Pillow's WebP decoder holds three full copies; transparency is not composited there)."""
    factor = max(img.size) // (2 * max_side) if max_side else 1
    if factor < 2:
        ImageOps.exif_transpose(img, in_place=True)  # a no-op for most photos (no copy, unlike the default)
        return _to_rgb(img)
    turn = _TRANSPOSE.get(img.getexif().get(_ORIENTATION, 1))
    if img.format == "WEBP":
        power = 8 if factor >= 8 else 4 if factor >= 4 else 2
        flags = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}[power]
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flags | cv2.IMREAD_IGNORE_ORIENTATION)
        if bgr is None:
            raise ImageError("corrupt or truncated image (WebP)")
        img = Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        return np.asarray(img.transpose(turn) if turn is not None else img)
    img.load()
    if img.mode in ("1", "P", "PA") or img.mode.startswith("I;16"):  # modes Pillow cannot shrink as they are
        img = img.convert({"1": "L", "PA": "RGBA"}.get(img.mode, "I") if img.mode != "P" else
                          "RGBA" if "transparency" in img.info else "RGB")
    img = img.reduce(factor)
    return _to_rgb(img.transpose(turn) if turn is not None else img)


def _decoded_bytes(img: Image.Image) -> int:
    """What decoding the opened image takes in memory, about."""
    return img.size[0] * img.size[1] * _BYTES_PER_PIXEL.get(img.mode, 4)


def _heif_kind(data: bytes) -> str | None:
    """"HEIC" or "HEIF" when the bytes are an ISO media file of those brands, else None."""
    return _HEIF_BRANDS.get(data[8:12]) if data[4:8] == b"ftyp" else None


def _plain_jpeg(data: bytes, img: Image.Image) -> np.ndarray | None:
    """The pixels of an ordinary JPEG (colour, upright, complete), decoded by OpenCV; None for
    anything else, which Pillow decodes. Why: both bundle libjpeg-turbo and give the same
    pixels (tests/test_images.py checks it), but handing a decoded image from Pillow to numpy
    costs nearly as much again as decoding it (Pillow keeps 4 bytes a pixel and packs them row
    by row): `bench/stages.py` puts decoding a 640x480 photo at 1.8 CPU ms, 2.5 before.
    A file that does not end in the JPEG end marker may be truncated, which OpenCV fills in
    grey where Pillow reports it, so such files go to Pillow."""
    if (img.format != "JPEG" or img.mode != "RGB" or not data.endswith(b"\xff\xd9")
            or img.getexif().get(_ORIENTATION, 1) != 1):
        return None
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)


def _read(path: Path) -> bytes:
    """A file's bytes, refusing first what would hang or fill memory if read (pipes, devices, huge
    files) and folders, with words a user recognises."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise ImageError("is a folder, not an image file")
        if not stat.S_ISREG(info.st_mode):
            raise ImageError("not a regular file (a pipe, device or socket)")
        if info.st_size > MAX_FILE_BYTES:
            raise ImageError(f"file too large for an image ({info.st_size / 2**20:.0f} MB)")
        return path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read file: {exc.strerror or exc}") from exc


def _to_rgb(img: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to RGB uint8; 16-bit data is scaled, alpha is composited on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        raw = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if raw.max() > 255 else 255.0
        gray = np.clip(raw * (255.0 / peak), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if img.mode == "F":
        raw = np.asarray(img, dtype=np.float64)
        gray = np.clip(raw * (255.0 if raw.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def _short(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) < 120 else text[:117] + "..."
