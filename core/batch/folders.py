"""Which files of a folder a batch analyses: image files by extension (and the photo formats it
cannot decode, which get a row saying so), sorted, sub-folders optionally, each once even through
symlink loops; folders that cannot be listed are reported."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from ..analysis.results import failure_row
from ..imaging.files import is_listed_image


def scan_folder(folder: Union[str, Path], recursive: bool = True) -> tuple[list[tuple[str, Path]], list[dict], list[str]]:
    """(name, path) of the folder's images, error rows for sub-folders that could not be listed,
    and notes; raises NotADirectoryError for a missing folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"not a folder: {folder}")
    files, unlisted, notes = list_images(folder, recursive)
    items = [(display_name(path.relative_to(folder)), path) for path in files]
    problems = [failure_row(display_name(path.relative_to(folder)) + "/", "error", message)
                for path, message in unlisted]
    return items, problems, notes


def list_images(folder: Path, recursive: bool = True) -> tuple[list[Path], list[tuple[Path, str]], list[str]]:
    """Image files under `folder` (by extension, sorted), folders that could not be listed with
    the reason, and notes on folders skipped because a symlink leads back to one already seen."""
    files, unlisted, notes, seen = [], [], [], set()
    stack = [folder]
    while stack:
        directory = stack.pop()
        try:
            info = directory.stat()
            if (info.st_dev, info.st_ino) in seen:
                notes.append(f"skipped {directory}: it leads to a folder already scanned (symlink loop?)")
                continue
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(directory) as entries:
                entries = list(entries)
        except OSError as exc:
            unlisted.append((directory, f"cannot list folder: {exc.strerror or exc}"))
            continue
        for entry in entries:
            path = Path(entry.path)
            if _is_dir(entry):
                if recursive:
                    stack.append(path)
            elif is_listed_image(path):
                files.append(path)
    return sorted(files), sorted(unlisted), notes


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows symlinks; loops are caught by the caller's seen-set
    except OSError:
        return False


def display_name(path: Path) -> str:
    """Posix path text that is always valid UTF-8: undecodable bytes in names become \\xNN."""
    return path.as_posix().encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
