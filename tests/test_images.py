import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from core.imaging import files as images
from core.imaging.files import ImageError, decode_image, load_image
from core.imaging.pixels import resize_square


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, "PNG")
    return buffer.getvalue()


def test_rgb_jpeg_roundtrip(tmp_path):
    array = np.zeros((40, 60, 3), np.uint8)
    array[:, :30] = (200, 10, 10)
    path = tmp_path / "x.jpg"
    Image.fromarray(array).save(path, quality=95)
    image = load_image(path)
    assert image.shape == (40, 60, 3) and image.dtype == np.uint8
    assert image[20, 10, 0] > 180 and image[20, 50, 0] < 20


@pytest.mark.parametrize("options", [{}, {"progressive": True}, {"subsampling": 0}])
def test_plain_jpegs_decode_to_pillows_pixels_by_the_fast_path(monkeypatch, options):
    rng = np.random.default_rng(1)
    ramp = np.linspace(0, 255, 96)[None, :, None] * np.ones((64, 1, 3))
    array = np.clip(ramp + rng.normal(0, 30, (64, 96, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=80, **options)
    fast = []
    original = images._plain_jpeg
    monkeypatch.setattr(images, "_plain_jpeg", lambda *args: fast.append(original(*args)) or fast[-1])
    decoded = load_image(buffer.getvalue())
    assert fast[0] is not None  # OpenCV decoded it
    assert np.array_equal(decoded, np.asarray(Image.open(buffer).convert("RGB")))
    with_trailer = load_image(buffer.getvalue() + b"camera maker notes")  # not ending in the end marker
    assert fast[1] is None and np.array_equal(with_trailer, decoded)


def test_grayscale_rgba_and_16_bit_become_rgb():
    gray = load_image(_png(np.full((20, 20), 90, np.uint8)))
    assert gray.shape == (20, 20, 3) and (gray == 90).all()
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 0  # fully transparent red: shows the white background
    assert (load_image(_png(rgba)) == 255).all()
    deep = np.full((20, 20), 65535 // 2, np.uint16)
    assert abs(int(load_image(_png(deep))[0, 0, 0]) - 127) <= 1


def test_exif_rotation_is_honoured():
    array = np.zeros((30, 50, 3), np.uint8)  # wide image stored sideways with orientation 6
    img = Image.fromarray(array)
    exif = img.getexif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", exif=exif)
    assert load_image(buffer.getvalue()).shape == (50, 30, 3)


@pytest.mark.parametrize("data, message", [
    (b"", "empty file"),
    (b"this is text, not a png", "not a readable image"),
])
def test_bad_bytes_raise_clear_errors(data, message):
    with pytest.raises(ImageError, match=message):
        load_image(data)


def test_truncated_jpeg_and_tiny_image(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(buffer, "JPEG")
    with pytest.raises(ImageError, match="truncated"):
        load_image(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageError, match="too small"):
        load_image(_png(np.zeros((1, 1, 3), np.uint8)))
    with pytest.raises(ImageError, match="cannot read"):
        load_image(tmp_path / "missing.jpg")


def test_resize_square():
    image = np.zeros((100, 80, 3), np.uint8)
    assert resize_square(image, 32).shape == (32, 32, 3)
    small = np.zeros((10, 10, 3), np.uint8)
    assert resize_square(small, 10) is small


def test_pipes_and_enormous_files_are_refused_before_reading(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")  # reading it would block forever
    with pytest.raises(ImageError, match="not a regular file"):
        load_image(tmp_path / "pipe.jpg")
    with open(tmp_path / "video.jpg", "wb") as file:
        file.truncate(600 * 2**20)  # sparse: 600 MB on paper, no disk used
    with pytest.raises(ImageError, match="too large"):
        load_image(tmp_path / "video.jpg")


def test_decode_image_reports_the_stored_size_of_a_downscaled_jpeg():
    buffer = io.BytesIO()
    Image.new("RGB", (1200, 800), (90, 120, 30)).save(buffer, "JPEG")
    image, stored_side = decode_image(buffer.getvalue(), max_side=300)
    assert stored_side == 1200
    assert max(image.shape[:2]) < 1200 and image.shape[1] / image.shape[0] == pytest.approx(1.5, abs=0.01)


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height (the pixel data is cut short): what a
    decoder sees of a huge image before it spends memory on it."""
    data = bytearray(_png(np.zeros((8, 8), np.uint8)))
    data[16:24] = struct.pack(">II", width, height)  # IHDR fields, after signature + chunk head
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.mark.parametrize("width, height", [
    (9000, 9000),  # 81 megapixels: over our cap, under Pillow's
    (9500, 9500),  # 90 megapixels: Pillow warns of a decompression bomb
    (20000, 20000),  # 400 megapixels: Pillow raises DecompressionBombError
])
def test_too_large_images_say_their_size_in_every_path(tmp_path, width, height):
    with pytest.raises(ImageError) as info:
        load_image(_png_claiming(width, height))
    assert str(info.value) == f"image too large ({width} x {height}, over 80 megapixels)"
    (tmp_path / "huge.png").write_bytes(_png_claiming(width, height))
    with pytest.raises(ImageError, match=rf"^image too large \({width} x {height}, over 80 megapixels\)$"):
        load_image(tmp_path / "huge.png")


def test_a_folder_is_not_an_image_file(tmp_path):
    (tmp_path / "photos.jpg").mkdir()
    with pytest.raises(ImageError) as info:
        load_image(tmp_path / "photos.jpg")
    assert str(info.value) == "is a folder, not an image file"


HUGE = (10240, 7712)  # 79 megapixels, just under MAX_PIXELS
MAKE_HUGE = ("import sys; from PIL import Image; folder = sys.argv[1]; size = (10240, 7712)\n"
             "Image.new('RGB', size, (150, 110, 90)).save(folder + '/flat.png')\n"
             "Image.new('P', size, 3).save(folder + '/palette.png')\n"
             "Image.new('I;16', size, 30000).save(folder + '/grey16.png')\n"
             "Image.new('RGB', size, (150, 110, 90)).save(folder + '/flat.tif', compression='tiff_deflate')\n"
             "Image.new('RGB', size, (150, 110, 90)).save(folder + '/flat.webp', lossless=True)\n")
MEASURE = ("import resource, sys; from concurrent.futures import ThreadPoolExecutor\n"
           "from core.analysis.pipeline import load_photo\n"
           "datas = [open(path, 'rb').read() for path in sys.argv[1:]]\n"
           "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
           "with ThreadPoolExecutor(2) as pool:\n"
           "    shapes = [image.shape for image, _ in pool.map(load_photo, datas)]\n"
           "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024, set(shapes))")


def test_huge_png_tiff_and_webp_are_decoded_reduced_one_at_a_time(tmp_path):
    """A 250 KB flat 79-megapixel PNG cost 1-2 GB to decode (Pillow's copy, numpy's, the
    conversions; 16-bit grey via float64). Decoded and shrunk at once, one large decode at a
    time per process and memory handed back after each: two threads decoding all five kinds
    (as a batch does) must stay under 600 MB together."""
    import subprocess
    import sys

    from core.config import PROJECT_ROOT

    subprocess.run([sys.executable, "-c", MAKE_HUGE, str(tmp_path)], check=True, timeout=300)
    paths = sorted(str(path) for path in tmp_path.iterdir())
    result = subprocess.run([sys.executable, "-c", MEASURE, *paths], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    grown_mb, shapes = result.stdout.split(maxsplit=1)
    assert shapes.strip() == "{(1205, 1600, 3)}"
    assert int(grown_mb) < 600, f"decoding grew the process by {grown_mb} MB"


def test_a_huge_png_reads_like_its_small_copy():
    """Shrunk by a whole factor at decode, then to the working size: the same picture as a copy
    shrunk beforehand, corner to corner (rotation by EXIF kept)."""
    from core.analysis.pipeline import load_photo

    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)
    big = np.repeat(np.repeat(small, 40, axis=0), 40, axis=1)  # 4800 x 3600
    image, scale = load_photo(_png(big))
    assert image.shape == (1200, 1600, 3) and scale == 3.0
    rows, columns = np.arange(1200) * 3 // 40, np.arange(1600) * 3 // 40
    expected = small[rows][:, columns]  # each pixel: the block of the small copy it lies in
    assert (image == expected).all(axis=2).mean() > 0.9  # all but the pixels on the blocks' edges
    exif = Image.Exif()
    exif[0x0112] = 6  # turned: the camera was held upright
    buffer = io.BytesIO()
    Image.fromarray(big).save(buffer, "PNG", exif=exif)
    upright, _ = load_photo(buffer.getvalue())
    assert upright.shape == (1600, 1200, 3)
    np.testing.assert_array_equal(upright, np.rot90(image, k=-1))
