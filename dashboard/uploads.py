"""Uploaded images and zips written to a temporary folder for the batch analysis, safely.

A zip member can never land outside the folder (absolute paths, `..`, links are refused). Before
anything is extracted, the number of images and their total size are checked against the batch's
budget, and the archive may not unpack to more than MAX_RATIO times its own size (images barely
compress, a zip bomb does), so a 1 MB zip of 1 GB of zeros writes nothing. While extracting, each
member is counted again as it streams (an archive can lie about sizes) and extraction stops at the
declared size; whatever was written of a refused or damaged archive is deleted at once.
"""
from __future__ import annotations

import io
import re
import shutil
import stat
import zipfile
import zlib
from pathlib import Path
from typing import Iterable, Protocol

from core.imaging.files import is_image_file

MAX_FILES = 5000
MAX_EXTRACTED_BYTES = 1 << 30  # 1 GiB of images once unzipped
MAX_RATIO = 10  # unpacked / zipped size; JPEG and PNG zip at 1:1, BMP and TIFF photos at 1.4:1
CHUNK = 1 << 20


class UploadError(ValueError):
    """An upload is refused as a whole; the message says why."""


class Upload(Protocol):  # what st.file_uploader returns, reduced to what is used here
    name: str

    def getvalue(self) -> bytes: ...


def save_uploads(uploads: Iterable[Upload], folder: Path) -> list[tuple[str, str]]:
    """Write images and the images inside zips into `folder`; returns (name, reason) of what was
    left out. Raises UploadError when the uploads exceed the limits."""
    rejected: list[tuple[str, str]] = []
    budget = Budget()
    used: set[str] = set()
    for upload in uploads:
        name = _unique(_safe_name(upload.name), used)
        if name.lower().endswith(".zip"):
            rejected += extract_zip(upload.getvalue(), folder / Path(name).stem, budget)
        elif is_image_file(Path(name)):
            data = upload.getvalue()
            budget.take(1, len(data))
            (folder / name).write_bytes(data)
        else:
            rejected.append((upload.name, "not an image or a zip"))
    return rejected


class Budget:
    """Files and bytes still allowed for one batch."""

    def __init__(self, files: int = MAX_FILES, size: int = MAX_EXTRACTED_BYTES):
        self.files, self.size = files, size

    def take(self, files: int, size: int) -> None:
        if files > self.files:
            raise UploadError(f"too many images: at most {MAX_FILES:,} per batch")
        if size > self.size:
            raise UploadError(f"too much data: at most {MAX_EXTRACTED_BYTES >> 20:,} MB of images per batch")
        self.files -= files
        self.size -= size


def extract_zip(data: bytes, folder: Path, budget: Budget) -> list[tuple[str, str]]:
    """Extract the images of a zip into `folder`, keeping its sub-folders; returns what was left out."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise UploadError(f"not a readable zip file ({exc})") from exc
    root = folder.resolve()
    rejected, members = [], []
    with archive:
        for info in archive.infolist():
            target = (root / info.filename).resolve()
            if info.is_dir():
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                rejected.append((info.filename, "links are not extracted"))
            elif not target.is_relative_to(root) or target == root:
                rejected.append((info.filename, "path leads outside the archive's folder"))
            elif not is_image_file(target):
                rejected.append((info.filename, "not an image"))
            elif info.flag_bits & 0x1:
                rejected.append((info.filename, "encrypted"))
            else:
                members.append((info, target))
        declared = sum(info.file_size for info, _ in members)
        budget.take(len(members), declared)
        if declared > MAX_RATIO * len(data):
            raise UploadError(f"the archive would unpack to {declared / len(data):,.0f} times its size, far more than "
                              "images do (a zip bomb?): refusing it")
        try:
            for info, target in members:
                _extract(archive, info, target)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # nothing of a refused archive stays on disk
            raise
    return rejected


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    """One member, streamed: never more than the size it declared (which the budget was charged)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with archive.open(info) as source, target.open("wb") as sink:
            written = 0
            while chunk := source.read(CHUNK):
                written += len(chunk)
                if written > info.file_size:
                    raise UploadError(f"{info.filename} is larger than the zip says: refusing the archive")
                sink.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise UploadError(f"{info.filename} is damaged or packed in a way this app cannot read ({exc})") from exc


def _safe_name(name: str) -> str:
    """The file name alone, with only harmless characters."""
    base = re.split(r"[\\/]", name)[-1]
    return re.sub(r"[^A-Za-z0-9._ -]", "_", base).strip(" .") or "upload"


def _unique(name: str, used: set[str]) -> str:
    """`name`, or `name` with a counter when an earlier upload already had it."""
    stem, dot, suffix = name.partition(".")
    candidate, n = name, 1
    while candidate.lower() in used:
        n += 1
        candidate = f"{stem}-{n}{dot}{suffix}"
    used.add(candidate.lower())
    return candidate
