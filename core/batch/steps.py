"""The two steps of a batch, as rows: the per-photo step (`find_photo`: decode, detect, align, or
the row the photo ends with) and the batched model step (`read_photos`). The local engine runs
them on threads and the Ray engine on workers, so both give the same rows."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from ..analysis.pipeline import FaceAnalyzer, FoundFaces, Photo
from ..analysis.results import failure_row
from ..imaging.files import ImageError

BATCH_FACES = 128  # faces per model call
Progress = Callable[[int, int], None]  # (images done, images in all)


@dataclass(frozen=True)
class FoundPhoto:
    """One image after the per-photo step: its name and faces, or the row it ends with (no
    face, error)."""

    name: str
    found: FoundFaces | None = None
    row: dict | None = None


def find_photo(analyzer: FaceAnalyzer, name: str, source: Photo) -> FoundPhoto:
    """The per-photo step of a batch. Never raises: a bad image becomes an error row."""
    try:
        found = analyzer.find(source)
    except ImageError as exc:
        return FoundPhoto(name, row=failure_row(name, "error", str(exc)))
    except Exception as exc:  # one odd file must never stop a whole folder
        return FoundPhoto(name, row=failure_row(name, "error", f"unexpected error: {type(exc).__name__}: {exc}"))
    return FoundPhoto(name, found) if found.faces else FoundPhoto(name, row=failure_row(name, "no_face"))


def read_photos(analyzer: FaceAnalyzer, group: Sequence[FoundPhoto]) -> list[dict]:
    """The group's rows in order, its faces read by one batched model call."""
    with_faces = [photo for photo in group if photo.row is None]
    results = iter(analyzer.read([photo.found for photo in with_faces]))
    rows = []
    for photo in group:
        rows += [photo.row] if photo.row is not None else [face.row(photo.name) for face in next(results)]
    return rows
