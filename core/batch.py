"""Age and gender for every face in a folder of photos, or in images held in memory.

`iter_rows` is the engine behind `python -m core batch` and the dashboard's Batch page: it
decodes and detects in parallel threads (decoding, OpenCV and LiteRT release the GIL), batches
the aligned faces of many photos into one model call (`core.analysis.FaceAnalyzer`), and yields
one row per face, plus one row per image with no face or an error, so every image file is
accounted for. The CLI writes those rows to the CSV as they come (flushed per model batch), so a
crash or a kill loses at most one batch, and `--resume` continues where a run stopped.
`--engine ray` runs the same per-image steps (`_find`, `_read`) on a Ray cluster instead
(`core.scale`, imported only then, so Ray stays an optional dependency).
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence, Union

import numpy as np
from tqdm import tqdm

from .analysis import FaceAnalyzer, Photo, load_photo
from .calibration import AGE_CHECKS
from .cli import add_config_options, add_detector_option, config_from_args
from .config import DEFAULT_MODEL_DIR, AnswerSettings
from .faces import FULL_RANGE_MODES, Face, build_detector
from .images import ImageError, is_image_file
from .inference import Predictor
from .quality import QUALITY_COLUMNS, Quality
from .runs import ModelError
from .spreadsheet import read_safe_csv, safe_cell

if TYPE_CHECKING:  # pandas is imported where frames are made: the CLI's run needs none
    import pandas as pd

COLUMNS = ["file", "status", "face", "x", "y", "w", "h", "det_score", "age", "age_low", "age_high", "gender",
           "p_female", "gender_confidence", "age_threshold", "age_check", *QUALITY_COLUMNS, "error"]
INTEGER_COLUMNS = ("face", "x", "y", "w", "h", "age_low", "age_high", "size_px")
FLOAT_COLUMNS = ("det_score", "age", "p_female", "gender_confidence", "age_threshold", "sharpness", "brightness",
                 "clipped", "yaw", "roll")
BATCH_FACES = 128  # faces per model call
FACE_STATUSES = ("ok", "uncertain")  # rows that are faces (others: no_face, error)
READ_AHEAD = 64  # images decoded ahead of the model

Progress = Callable[[int, int], None]


@dataclass
class _Found:
    """One image after the parallel stage: its name, faces and crops, or its final row."""

    name: str
    faces: list[Face | None] = field(default_factory=list)
    crops: np.ndarray | None = None
    shape: tuple = ()
    scale: float = 1.0
    qualities: list[Quality] = field(default_factory=list)
    row: dict | None = None  # set for images that end here (no face, error)


def analyze_folder(folder: Union[str, Path], analyzer: FaceAnalyzer, recursive: bool = True,
                   progress: Progress | None = None) -> pd.DataFrame:
    """All rows for a folder (see `COLUMNS`), including one per sub-folder that could not be
    listed. The frame's `attrs["notes"]` lists folders skipped because a link loops back."""
    files, problems, notes = scan_folder(folder, recursive)
    rows = problems + [row for rows in iter_rows(files, analyzer, progress) for row in rows]
    table = frame(rows).sort_values("file", kind="stable", ignore_index=True) if problems else frame(rows)
    table.attrs["notes"] = notes
    return table


def analyze_images(items: Iterable[tuple[str, Photo]], analyzer: FaceAnalyzer,
                   progress: Progress | None = None) -> pd.DataFrame:
    """Rows for (name, image) pairs; an image is a path, encoded bytes (e.g. an upload) or an
    RGB uint8 array. Rows keep the order of `items`."""
    return frame([row for rows in iter_rows(list(items), analyzer, progress) for row in rows])


def scan_folder(folder: Union[str, Path], recursive: bool = True) -> tuple[list[tuple[str, Path]], list[dict], list[str]]:
    """(name, path) of the folder's images, error rows for sub-folders that could not be listed,
    and notes; raises NotADirectoryError for a missing folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"not a folder: {folder}")
    files, unlisted, notes = list_images(folder, recursive)
    items = [(_display_name(path.relative_to(folder)), path) for path in files]
    problems = [_row(_display_name(path.relative_to(folder)) + "/", "error", error=message)
                for path, message in unlisted]
    return items, problems, notes


def iter_rows(items: Sequence[tuple[str, Photo]], analyzer: FaceAnalyzer,
              progress: Progress | None = None) -> Iterator[list[dict]]:
    """Lists of rows, each list complete for a group of images (one model batch), in item order."""
    done, waiting, faces = 0, [], 0
    for found in _in_parallel(lambda item: _find(analyzer, *item), items):
        waiting.append(found)
        faces += len(found.faces) if found.row is None else 0
        if faces >= BATCH_FACES:
            yield _read(analyzer, waiting)
            waiting, faces = [], 0
        done += 1
        if progress is not None:
            progress(done, len(items))
    if waiting:
        yield _read(analyzer, waiting)


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
            elif is_image_file(path):
                files.append(path)
    return sorted(files), sorted(unlisted), notes


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows symlinks; loops are caught by the caller's seen-set
    except OSError:
        return False


def _display_name(path: Path) -> str:
    """Posix path text that is always valid UTF-8: undecodable bytes in names become \\xNN."""
    return path.as_posix().encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


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


def _find(analyzer: FaceAnalyzer, name: str, source: Photo) -> _Found:
    """Decode, detect and align one image. Never raises: a bad image becomes an error row."""
    try:
        image, scale = load_photo(source)
        faces = analyzer.detect(image)
        if not faces:
            return _Found(name, row=_row(name, "no_face"))
        crops = analyzer.align(image, faces)
        return _Found(name, faces, crops, image.shape, scale, analyzer.measure(faces, crops, image.shape, scale))
    except ImageError as exc:
        return _Found(name, row=_row(name, "error", error=str(exc)))
    except Exception as exc:  # one odd file must never stop a whole folder
        return _Found(name, row=_row(name, "error", error=f"unexpected error: {type(exc).__name__}: {exc}"))


def _read(analyzer: FaceAnalyzer, group: list[_Found]) -> list[dict]:
    """The group's rows in order, faces read by one batched model call."""
    with_faces = [found for found in group if found.row is None]
    predictions = iter(analyzer.predict(np.concatenate([f.crops for f in with_faces])) if with_faces else [])
    rows = []
    for found in group:
        if found.row is not None:
            rows.append(found.row)
            continue
        for number, (face, quality) in enumerate(zip(found.faces, found.qualities), 1):
            result = analyzer.result(number, face, next(predictions), quality, found.shape, found.scale)
            rows.append(_row(found.name, **result.row()))
    return rows


def _row(name: str, status: str = "ok", **values) -> dict:
    return {"file": name, "status": status, **values}


def read_results(path: Path) -> pd.DataFrame:
    """The results `run` wrote (a CSV, or a folder of Parquet parts), with the original file
    names and the column types of `frame`."""
    if _is_parts(path):
        from .parts import read_parts

        return frame(read_parts(path).to_dict("records"))
    return frame(read_safe_csv(path).to_dict("records"))


def frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as a frame with all COLUMNS, each of one type whatever its cells: integer columns stay
    integers despite empty cells, and a text column with no text is still text."""
    import pandas as pd

    table = pd.DataFrame(rows, columns=COLUMNS)
    for column in INTEGER_COLUMNS:
        table[column] = table[column].astype("Int64")
    for column in FLOAT_COLUMNS:
        table[column] = table[column].astype("float64")
    for column in set(COLUMNS) - set(INTEGER_COLUMNS) - set(FLOAT_COLUMNS):
        # text, missing where empty (as a CSV reads back), never a column of float NaN
        table[column] = table[column].replace("", np.nan).astype("str")
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `batch` command's arguments."""
    parser.add_argument("folder", metavar="DIR",
                        help="folder of photos (with --engine ray also a URI Ray can read, e.g. s3://bucket/photos)")
    parser.add_argument("--out", required=True, type=Path,
                        help="CSV file to write (one row per face), or NAME.parquet: a folder of Parquet parts, for big runs")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR,
                        help="model folder (default: %(default)s)")
    parser.add_argument("--recursive", action=argparse.BooleanOptionalAction, default=True,
                        help="include sub-folders (default: yes)")
    parser.add_argument("--aligned", action="store_true",
                        help="images are already aligned face crops (like UTKFace): skip detection")
    add_detector_option(parser)
    parser.add_argument("--full-range", choices=FULL_RANGE_MODES, default="auto",
                        help="blazeface only: when to add its slower model for small, distant faces: auto (when "
                             "the fast one finds none or only small ones; default), always (group photos), never")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows already in --out and analyse only the files it lacks")
    add_config_options(parser, AnswerSettings())
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: threads on this machine (default); ray: a Ray cluster (pip install -r "
                             "requirements-scale.txt), for archives larger than one machine analyses in time")
    parser.add_argument("--address", help="with --engine ray: the cluster to join (auto, or ray://HOST:10001); "
                                          "default: start a Ray on this machine for the run")


def cli_main(argv: list[str] | None = None) -> int:
    """`python -m core batch DIR --out results.csv ...`; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m core batch",
                                     description="Age and gender of every face in a folder of photos, one CSV row per face.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Exit code 0 when at least one image could be analysed, 1 when none could, 2 for bad
    arguments (missing folder or model, unwritable output)."""
    if args.address and args.engine != "ray":
        return _fail("--address is for --engine ray")
    if args.engine == "local" and not Path(args.folder).is_dir():
        return _fail(f"not a folder: {args.folder}")
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        done = _rows_kept_for_resume(args.out) if args.resume else []
        engine = _engine(args)
        files, problems, notes = engine.scan(args.folder, args.recursive)
    except (OSError, ModelError, ValueError) as exc:
        return _fail(str(exc))
    finished = {row["file"] for row in done}
    todo = [(name, path) for name, path in files if name not in finished]
    problems = [row for row in problems if row["file"] not in finished]
    totals = Totals()
    totals.add(done)
    start = time.perf_counter()
    try:
        with _open_output(args.out, append=bool(done)) as writer, \
                tqdm(total=len(todo), unit="img", desc="analysing", dynamic_ncols=True, disable=None) as bar:
            for rows in chain([problems], engine.rows(todo, lambda n, _total: bar.update(n - bar.n))):
                writer.write(rows)
                totals.add(rows)
    except OSError as exc:
        return _fail(f"cannot write {args.out}: {exc.strerror or exc}")
    print(totals.summary(time.perf_counter() - start, args.out, analysed=len(todo), notes=notes))
    return 0 if totals.analysed_any else 1


def _detector(args: argparse.Namespace):
    options = {"full_range": args.full_range} if args.detector == "blazeface" else {}
    return build_detector(args.detector, **options)


def build_analyzer(args: argparse.Namespace, threads: int | None = None) -> FaceAnalyzer:
    """The detector and model the `batch` options ask for: the one place both engines build them
    (the local engine once, the Ray engine once per worker process)."""
    detector = None if args.aligned else _detector(args)
    return FaceAnalyzer(Predictor(args.model, threads=threads), detector, config_from_args(args, AnswerSettings))


class _LocalEngine:
    """Threads on this machine: list with `scan_folder`, analyse with `iter_rows`."""

    def __init__(self, args: argparse.Namespace):
        self._analyzer = build_analyzer(args)

    scan = staticmethod(scan_folder)

    def rows(self, items: Sequence[tuple[str, Photo]], progress: Progress) -> Iterator[list[dict]]:
        return iter_rows(items, self._analyzer, progress)


def _engine(args: argparse.Namespace):
    if args.engine == "ray":
        from .scale import RayEngine  # Ray is imported only when asked for

        return RayEngine(args)
    return _LocalEngine(args)


class _CsvWriter:
    """Appends rows to the results CSV with spreadsheet-safe cells, flushed after every group."""

    def __init__(self, handle, header: bool):
        self._handle = handle
        self._writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        if header:
            self._writer.writeheader()

    def write(self, rows: list[dict]) -> None:
        self._writer.writerows({key: safe_cell(value) for key, value in row.items()} for row in rows)
        self._handle.flush()


@contextmanager
def _open_output(path: Path, append: bool) -> Iterator[_CsvWriter]:
    if _is_parts(path):
        from .parts import PartsWriter

        writer = PartsWriter(path, append)
        try:
            yield writer
        finally:  # also on Ctrl-C: what was collected is whole images
            writer.flush()
        return
    with path.open("a" if append else "w", newline="", encoding="utf-8") as handle:
        yield _CsvWriter(handle, header=not append)


def _is_parts(out: Path) -> bool:
    """`--out NAME.parquet` is a folder of Parquet parts (`core.parts`), anything else a CSV."""
    return out.suffix == ".parquet"


def _rows_kept_for_resume(out: Path) -> list[dict]:
    """The rows of an interrupted run worth keeping (None for empty cells), rewritten so the CSV
    holds only them: a half-written last line is dropped, and so are the rows of the last file
    (a kill may have cut between the rows of its faces), which is analysed again. Parquet parts
    are written whole, so all of theirs are kept."""
    if _is_parts(out):
        return _records(read_results(out))
    if not out.is_file() or out.stat().st_size == 0:
        return []
    import pandas as pd

    text = out.read_text(encoding="utf-8", errors="replace")
    try:
        raw = read_safe_csv(io.StringIO(text[:text.rfind("\n") + 1]))  # without a half-written last line
    except (ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"cannot resume from {out}: it is not a results CSV of this tool ({exc})") from exc
    if list(raw.columns) != COLUMNS:
        raise ValueError(f"cannot resume from {out}: its columns are not those of `batch` results")
    table = frame(raw.to_dict("records"))
    if not table.empty:
        table = table[table["file"] != table["file"].iloc[-1]]
    rows = _records(table)
    partial = out.with_name(f".partial-{out.name}")
    with _open_output(partial, append=False) as writer:
        writer.write(rows)
    os.replace(partial, out)
    return rows


def _records(table: pd.DataFrame) -> list[dict]:
    return table.astype(object).where(table.notna(), None).to_dict("records")


class Totals:
    """Running totals of a run's rows for the summary printed at its end: kept as the rows
    stream past, so the summary costs neither memory nor a re-read of the results (nor
    pandas' import, two thirds of the command's start-up). Rows of one file always come
    together (one image's rows are written at once), so a file is counted at its first row."""

    def __init__(self):
        self.files = Counter()  # files by the status of their first row
        self.faces = self.uncertain = self.poor = 0
        self.graded = False  # whether any face has a quality grade
        self.issues = Counter()  # quality issues of the poor faces
        self.age_checks, self.age_threshold = Counter(), None
        self.errors = Counter()  # files by the reason of their error
        self._last_file = None

    @property
    def analysed_any(self) -> bool:
        """Whether at least one image could be analysed (faces or not): the exit code's test."""
        return any(self.files[status] for status in (*FACE_STATUSES, "no_face"))

    def add(self, rows: Iterable[dict]) -> None:
        for row in rows:
            status = row["status"]
            if row["file"] != self._last_file:
                self._last_file = row["file"]
                self.files[status] += 1
                if status == "error":
                    self.errors[str(row.get("error")).split(" (")[0]] += 1
            if status not in FACE_STATUSES:
                continue
            self.faces += 1
            self.uncertain += status == "uncertain"
            self.graded = self.graded or row.get("quality") is not None
            if row.get("quality") == "poor":
                self.poor += 1
                self.issues.update(issue for issue in (row.get("quality_issues") or "").split(";") if issue)
            if row.get("age_check") is not None:
                self.age_checks[row["age_check"]] += 1
                self.age_threshold = row["age_threshold"] if self.age_threshold is None else self.age_threshold

    def summary(self, elapsed: float, out: Path | None = None, analysed: int | None = None,
                notes: Sequence[str] = ()) -> str:
        """Plain-text totals: files, faces, no-face, errors (grouped by reason), images/s."""
        files = sum(self.files.values())
        analysed = files if analysed is None else analysed
        resumed = f" ({files - analysed} from the earlier run)" if analysed != files else ""
        lines = [f"{files} files{resumed}, {self.faces} faces, "
                 f"{self.files['no_face']} without a face, {self.files['error']} errors "
                 f"in {elapsed:.1f} s ({analysed / max(elapsed, 1e-9):.1f} images/s)"]
        if self.graded:
            detail = ", ".join(f"{issue} {n}" for issue, n in self.issues.most_common())
            lines.append(f"  quality: {self.poor} poor faces ({detail or 'none'}), {self.uncertain} reported as uncertain")
        if self.age_checks:
            lines.append(f"  age check at {self.age_threshold:g}: "
                         + ", ".join(f"{name} {self.age_checks[name]}" for name in AGE_CHECKS))
        lines += [f"  error: {reason} ({n})" for reason, n in self.errors.most_common()]
        lines += [f"  note: {note}" for note in notes]
        if out is not None:
            lines.append(f"results: {out}")
        return "\n".join(lines)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2
