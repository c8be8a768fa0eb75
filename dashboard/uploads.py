"""Uploaded images and zips written to a temporary folder for the batch analysis, safely.

Every image is written under a plain name of our own (`000001.jpg`, the upload order), flat in
the folder, and `Saved.names` maps it back to the name the user knows: the upload's own name
(`José.jpg`, `写真.png`, kept whole) or, for a zip member, the zip's name and the member's path
(`trip/beach/1.jpg`). So results show the user's names while nothing of a name reaches the
disk, and names that clash on disk (`a.jpg` beside `a.jpg/b.jpg`, `x.jpg` and `X.JPG` on a
case-insensitive disk) cannot. A zip member with a path leading outside the archive (absolute,
`..`) or a link is left out and listed, like a member whose name repeats an earlier one.

Before anything is extracted, the number of images and their total size are checked against the
batch's budget, and the archive may not unpack to more than MAX_RATIO times its own size (images
barely compress, a zip bomb does), so a 1 MB zip of 1 GB of zeros writes nothing. While
extracting, each member is counted again as it streams (an archive can lie about sizes) and
extraction stops at the declared size; whatever was written of a refused or damaged archive is
deleted at once.
"""
from __future__ import annotations

import io
import posixpath
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Protocol

from core.imaging.files import is_listed_image

MAX_FILES = 5000
MAX_EXTRACTED_BYTES = 1 << 30  # 1 GiB of images once unzipped
MAX_RATIO = 10  # unpacked / zipped size; JPEG and PNG zip at 1:1, BMP and TIFF photos at 1.4:1
CHUNK = 1 << 20


class UploadError(ValueError):
    """An upload is refused as a whole; the message says why."""


class Upload(Protocol):  # what st.file_uploader returns, reduced to what is used here
    name: str

    def getvalue(self) -> bytes: ...


@dataclass
class Saved:
    """What `save_uploads` wrote: the user's name of each file on disk (by its name there), and
    (name, reason) of what was left out."""

    names: dict[str, str] = field(default_factory=dict)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    _shown: set[str] = field(default_factory=set, repr=False)

    def add(self, folder: Path, user_name: str) -> Path:
        """A new file's path in `folder` for `user_name` (made unique among the names shown)."""
        disk = f"{len(self.names) + 1:06d}{Path(user_name).suffix.lower()}"
        shown = _unique(user_name, self._shown)
        self._shown.add(shown)
        self.names[disk] = shown
        return folder / disk

    def forget(self, path: Path) -> None:
        self._shown.discard(self.names.pop(path.name, ""))


def save_uploads(uploads: Iterable[Upload], folder: Path) -> Saved:
    """Write images and the images inside zips into `folder`. Raises UploadError when the
    uploads exceed the limits (nothing of the refused archive stays on disk)."""
    saved = Saved()
    budget = Budget()
    for upload in uploads:
        name = re.split(r"[\\/]", upload.name)[-1] or "upload"  # the browser sends a base name; be sure
        if name.lower().endswith(".zip"):
            extract_zip(upload.getvalue(), folder, budget, saved, prefix=name[:-4])
        elif is_listed_image(Path(name)):
            data = upload.getvalue()
            budget.take(1, len(data))
            saved.add(folder, name).write_bytes(data)
        else:
            saved.rejected.append((upload.name, "not an image or a zip"))
    return saved


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


def extract_zip(data: bytes, folder: Path, budget: Budget, saved: Saved | None = None, prefix: str = "") -> Saved:
    """Extract the images of a zip into `folder`, each named in `saved` as `prefix/its path`."""
    saved = saved if saved is not None else Saved()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise UploadError(f"not a readable zip file ({exc})") from exc
    members, seen = [], set()
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            path = info.filename.replace("\\", "/")
            inside = posixpath.normpath(path)
            if stat.S_ISLNK(info.external_attr >> 16):
                saved.rejected.append((info.filename, "links are not extracted"))
            elif path.startswith("/") or inside == ".." or inside.startswith("../") or re.match(r"^[A-Za-z]:", path):
                saved.rejected.append((info.filename, "path leads outside the archive's folder"))
            elif not is_listed_image(Path(inside)):
                saved.rejected.append((info.filename, "not an image"))
            elif info.flag_bits & 0x1:
                saved.rejected.append((info.filename, "encrypted"))
            elif inside in seen:
                saved.rejected.append((info.filename, "the archive holds another file of this name (the first is analysed)"))
            else:
                seen.add(inside)
                members.append((info, inside))
        declared = sum(info.file_size for info, _ in members)
        budget.take(len(members), declared)
        if declared > MAX_RATIO * max(len(data), 1):
            raise UploadError(f"the archive would unpack to {declared / len(data):,.0f} times its size, far more than "
                              "images do (a zip bomb?): refusing it")
        written = []
        if members:
            folder.mkdir(parents=True, exist_ok=True)
        try:
            for info, inside in members:
                target = saved.add(folder, f"{prefix}/{inside}" if prefix else inside)
                written.append(target)
                _extract(archive, info, target)
        except BaseException:
            for target in written:  # nothing of a refused archive stays on disk
                target.unlink(missing_ok=True)
                saved.forget(target)
            raise
    return saved


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    """One member, streamed: never more than the size it declared (which the budget was charged)."""
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


def _unique(name: str, used: set[str]) -> str:
    """`name`, or `name (2)` (before its extension) when another file already shows that name."""
    stem, suffix = posixpath.splitext(name)
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{stem} ({n}){suffix}"
    return candidate
