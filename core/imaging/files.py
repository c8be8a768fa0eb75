"""Decoding and resizing images, robust to what real folders contain.

Every image that enters the project (training crops, photos, video frames) passes through
`load_image`, so one function decides how formats, EXIF rotation, alpha, grayscale and 16-bit
data become plain RGB uint8 arrays. Normalisation to [0, 1] lives inside the model itself, so
callers always hand it uint8 pixels.
"""
from __future__ import annotations

import io
import stat
from pathlib import Path
from typing import Union

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
MAX_PIXELS = 80_000_000  # refuse images larger than this: decoding them would need GBs
MIN_SIDE = 8  # smaller images cannot contain a usable face
MAX_FILE_BYTES = 512 * 2**20  # larger "images" are not read at all (they would be read whole)
_ORIENTATION = 0x0112  # the EXIF tag saying how the camera was turned

ImageSource = Union[str, Path, bytes]

# Our MAX_PIXELS check below runs as soon as Pillow has read the header, before any pixel is
# decoded, so Pillow's own decompression-bomb check adds no safety; it only raised first (for
# images over ~89 megapixels) with a message that hides the size. All decoding in the project
# goes through this module, so switching Pillow's check off here leaves no image unchecked.
Image.MAX_IMAGE_PIXELS = None


class ImageError(ValueError):
    """An image could not be used; the message says why in plain words."""


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def load_image(source: ImageSource, max_side: int | None = None) -> np.ndarray:
    """Decode a file or bytes into an RGB uint8 array, upright as the camera meant it.

    `max_side` lets JPEG decoding downscale on the fly (cheap and memory-bounded for huge photos);
    the result may still be up to twice `max_side`, callers resize further if they need to.
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
            ImageOps.exif_transpose(img, in_place=True)  # a no-op for most photos (no copy, unlike the default)
            array = _to_rgb(img)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError("not a readable image (unknown or unsupported format)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"corrupt or truncated image ({_short(exc)})") from exc
    if min(array.shape[:2]) < MIN_SIDE:
        raise ImageError(f"image too small ({array.shape[1]}x{array.shape[0]} pixels)")
    return array, stored_side


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
