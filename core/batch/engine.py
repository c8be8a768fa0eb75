"""Age and gender for every face in a folder of photos, or in images held in memory.

`iter_rows` is the engine behind `python -m core batch` and the dashboard's Batch page: it runs
the per-photo step (`core.analysis.pipeline.FaceFinder.find`: decode, detect, align) in parallel
threads (decoding, OpenCV and LiteRT release the GIL), batches the aligned faces of many photos
into one model call (`FaceAnalyzer.read`), and yields one row per face, plus one row per image
with no face or an error, so every image file is accounted for. `run_batch` writes those rows to
the results as they come (flushed per model batch), so a crash or a kill loses at most one batch,
and `--resume` continues where a run stopped, with the same settings (`core.batch.record`).
`engine="ray"` runs the same two steps
(`core.batch.steps`) on a Ray cluster instead (`core.batch.ray`, imported only then, so Ray stays
an optional dependency).
"""
from __future__ import annotations

import os
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence, Union

from ..analysis.pipeline import FaceAnalyzer, Photo
from ..analysis.results import results_frame
from ..imaging.files import IMAGE_EXTENSIONS
from .folders import scan_folder
from .output import open_output, rows_kept_for_resume
from .record import OutputRefused, check_out, differences, run_record, write_record
from .settings import BatchSettings
from .steps import BATCH_FACES, Progress, find_photo, read_photos
from .totals import Totals

if TYPE_CHECKING:  # pandas is imported where frames are made: the CLI's run needs none
    import pandas as pd

READ_AHEAD = 64  # images decoded ahead of the model


def iter_rows(items: Sequence[tuple[str, Photo]], analyzer: FaceAnalyzer,
              progress: Progress | None = None) -> Iterator[list[dict]]:
    """Lists of rows, each list complete for a group of images (one model batch), in item order."""
    done, waiting, faces = 0, [], 0
    for photo in _in_parallel(lambda item: find_photo(analyzer, *item), items):
        waiting.append(photo)
        faces += len(photo.found.faces) if photo.row is None else 0
        if faces >= BATCH_FACES:
            yield read_photos(analyzer, waiting)
            waiting, faces = [], 0
        done += 1
        if progress is not None:
            progress(done, len(items))
    if waiting:
        yield read_photos(analyzer, waiting)


def _in_parallel(work: Callable, items: Sequence) -> Iterator:
    """work(item) for each item, in order, on one thread per core, at most a bounded number
    of items ahead of the consumer (so memory stays flat on huge folders)."""
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        pending: deque[Future] = deque()
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) >= READ_AHEAD:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def analyze_folder(folder: Union[str, Path], analyzer: FaceAnalyzer, recursive: bool = True,
                   progress: Progress | None = None) -> pd.DataFrame:
    """All rows for a folder (see `core.analysis.results.COLUMNS`), including one per sub-folder
    that could not be listed. The frame's `attrs["notes"]` lists folders skipped because a link
    loops back."""
    files, problems, notes = scan_folder(folder, recursive)
    rows = problems + [row for rows in iter_rows(files, analyzer, progress) for row in rows]
    table = results_frame(rows)
    table = table.sort_values("file", kind="stable", ignore_index=True) if problems else table
    table.attrs["notes"] = notes
    return table


def analyze_images(items: Iterable[tuple[str, Photo]], analyzer: FaceAnalyzer,
                   progress: Progress | None = None) -> pd.DataFrame:
    """Rows for (name, image) pairs; an image is a path, encoded bytes (e.g. an upload) or an
    RGB uint8 array. Rows keep the order of `items`."""
    return results_frame([row for rows in iter_rows(list(items), analyzer, progress) for row in rows])


class LocalEngine:
    """Threads on this machine: list with `scan_folder`, analyse with `iter_rows`."""

    def __init__(self, settings: BatchSettings):
        self._analyzer = settings.analyzer()

    scan = staticmethod(scan_folder)

    def rows(self, items: Sequence[tuple[str, Photo]], progress: Progress) -> Iterator[list[dict]]:
        return iter_rows(items, self._analyzer, progress)


class NoImages(ValueError):
    """The folder holds no image file to analyse."""


class EngineUnavailable(ValueError):
    """The engine asked for cannot run here; the message says what to install or check."""


def open_engine(settings: BatchSettings, engine: str = "local", address: str | None = None):
    """The engine that runs a batch: local threads, or Ray (imported only when asked for)."""
    if engine == "ray":
        try:
            from .ray import RayEngine
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] != "ray":
                raise
            raise EngineUnavailable("--engine ray needs Ray, which is not installed: "
                                    "pip install -r requirements-scale.txt") from None
        return RayEngine(settings, address)
    if address:
        raise ValueError("--address is for --engine ray")
    return LocalEngine(settings)


@dataclass(frozen=True)
class BatchRun:
    """What a finished (or interrupted) batch did: its totals, how many files it analysed now
    (the rest came from the earlier run it resumed), and notes on folders skipped."""

    totals: Totals
    analysed: int
    notes: list[str]


def run_batch(folder: str, out: Path, settings: BatchSettings, existing: str = "refuse", recursive: bool = True,
              engine: str = "local", address: str | None = None,
              progress: Callable[[int], Progress] | None = None) -> BatchRun:
    """Analyse a folder into `out` (a CSV, or Parquet parts for NAME.parquet), writing rows as
    they come. Results already at `out` are refused, resumed or overwritten as `existing` says
    (`core.batch.record`: nothing that is not results is ever written over, and a resume must
    have the settings the results were made with). `progress(total)` is called once the files
    to analyse are known and returns the callback that follows them. A KeyboardInterrupt leaves
    `out` holding whole images only. ValueError (OutputRefused) for what cannot start."""
    check_out(out, existing)
    record = run_record(folder, recursive, settings)
    if existing == "resume" and out.exists():
        changed = differences(out, record)
        if changed:
            raise OutputRefused(f"cannot resume {out}: its results were made with other settings ({'; '.join(changed)})"
                                ": give the same folder and options, or --overwrite to start again")
        if changed is None:
            warnings.warn(f"{out} has no record of the settings it was made with: resuming it as if they were "
                          "these (same folder, model and options)", stacklevel=2)
    runner = open_engine(settings, engine, address)
    files, problems, notes = runner.scan(folder, recursive)
    if not files and not problems:
        raise NoImages(f"no image files in {folder} (looked for {' '.join(IMAGE_EXTENSIONS)}, in any letter case)")
    out.parent.mkdir(parents=True, exist_ok=True)
    done = rows_kept_for_resume(out) if existing == "resume" else []
    finished = {row["file"] for row in done}
    todo = [(name, path) for name, path in files if name not in finished]
    problems = [row for row in problems if row["file"] not in finished]
    totals = Totals()
    totals.add(done)
    follow = progress(len(todo)) if progress is not None else (lambda _done, _total: None)
    with open_output(out, append=bool(done)) as writer:
        write_record(out, record)
        for rows in chain([problems], runner.rows(todo, follow)):
            writer.write(rows)
            totals.add(rows)
    return BatchRun(totals, len(todo), notes)
