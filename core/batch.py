"""Age and gender for every face in a folder of photos, or in images held in memory.

`analyze_folder` is what `python -m core batch` and the dashboard run: it walks a folder,
decodes and detects in parallel threads (decoding, OpenCV and LiteRT release the GIL), batches
the aligned faces through the model, and returns one row per face, plus one row per image with
no face or an error, so every image file is accounted for.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence, Union

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from .config import DEFAULT_MODEL_DIR
from .faces import FULL_RANGE_MODES, Face, FaceDetector, align_face, fit_within
from .images import ImageError, decode_image, is_image_file, resize_square
from .inference import Prediction, Predictor
from .model import ModelError

COLUMNS = ["file", "status", "face", "x", "y", "w", "h", "det_score", "age", "gender", "p_female", "error"]
WORK_SIDE = 1600  # photos are analysed at most this large: plenty for faces, bounded in memory
BATCH_FACES = 128  # faces per model call
READ_AHEAD = 64  # images decoded ahead of the model, per batch in flight

Source = Union[str, Path, bytes, np.ndarray]
Progress = Callable[[int, int], None]


@dataclass
class _Prepared:
    """One image after the parallel stage: its rows (predictions still empty) and face crops."""

    rows: list[dict]
    crops: list[np.ndarray] = field(default_factory=list)


def analyze_folder(folder: Union[str, Path], predictor: Predictor | None = None,
                   detector: FaceDetector | None = None, recursive: bool = True, aligned: bool = False,
                   progress: Progress | None = None) -> pd.DataFrame:
    """One row per face found in the folder's images (see `COLUMNS`), one per image without a
    face or that could not be read, one per sub-folder that could not be listed.

    `aligned=True` treats every image as an already aligned face crop (e.g. UTKFace) and skips
    detection. The frame's `attrs["notes"]` lists folders skipped because a link loops back."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"not a folder: {folder}")
    files, unlisted, notes = list_images(folder, recursive)
    items = [(_display_name(path.relative_to(folder)), path) for path in files]
    table = analyze_images(items, predictor, detector, aligned, progress)
    if unlisted:
        problems = [_row(_display_name(path.relative_to(folder)) + "/", "error", error=message)
                    for path, message in unlisted]
        table = pd.concat([table, _frame(problems)], ignore_index=True)
        table = table.sort_values("file", kind="stable", ignore_index=True)
    table.attrs["notes"] = notes
    return table


def analyze_images(items: Iterable[tuple[str, Source]], predictor: Predictor | None = None,
                   detector: FaceDetector | None = None, aligned: bool = False,
                   progress: Progress | None = None) -> pd.DataFrame:
    """Rows as in `analyze_folder` for (name, image) pairs; an image is a path, encoded bytes
    (e.g. an upload) or an RGB uint8 array. Rows keep the order of `items`."""
    items = list(items)
    predictor = predictor if predictor is not None else Predictor(DEFAULT_MODEL_DIR)
    if detector is None and not aligned:
        detector = FaceDetector()
    rows, waiting = [], []
    prepare = lambda item: _prepare(item[0], item[1], detector, aligned, predictor.image_size)  # noqa: E731
    for done, prepared in enumerate(_in_parallel(prepare, items), 1):
        rows.extend(prepared.rows)
        waiting.extend(zip((row for row in prepared.rows if row["status"] == "ok"), prepared.crops))
        if len(waiting) >= BATCH_FACES:
            _predict(predictor, waiting)
        if progress is not None:
            progress(done, len(items))
    _predict(predictor, waiting)
    return _frame(rows)


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
    workers = os.cpu_count() or 1
    with ThreadPoolExecutor(workers) as pool:
        pending: deque[Future] = deque()
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) >= READ_AHEAD:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _prepare(name: str, source: Source, detector: FaceDetector | None, aligned: bool, size: int) -> _Prepared:
    """Decode, detect and align one image. Never raises: a bad image becomes an error row."""
    try:
        image, scale = _load(source)
        if aligned:
            height, width = (round(side * scale) for side in image.shape[:2])
            return _Prepared([_row(name, "ok", face=0, x=0, y=0, w=width, h=height)],
                             [resize_square(image, size)])
        faces = detector.detect(image)
        if not faces:
            return _Prepared([_row(name, "no_face")])
        return _Prepared([_face_row(name, i, face, scale) for i, face in enumerate(faces)],
                         [align_face(image, face, size) for face in faces])
    except ImageError as exc:
        return _Prepared([_row(name, "error", error=str(exc))])
    except Exception as exc:  # one odd file must never stop a whole folder
        return _Prepared([_row(name, "error", error=f"unexpected error: {type(exc).__name__}: {exc}")])


def _load(source: Source) -> tuple[np.ndarray, float]:
    """The image at most WORK_SIDE large, and the factor from its pixels to the original's.

    JPEGs are decoded at reduced size when large (fast, and memory stays bounded)."""
    if isinstance(source, np.ndarray):
        if source.ndim != 3 or source.shape[2] != 3 or source.dtype != np.uint8:
            raise ImageError(f"not an RGB uint8 image array (shape {source.shape}, dtype {source.dtype})")
        image, original_side = source, max(source.shape[:2])
    else:
        image, original_side = decode_image(source, max_side=WORK_SIDE // 2)
    if max(image.shape[:2]) > WORK_SIDE:
        image = fit_within(image, WORK_SIDE)
    return image, original_side / max(image.shape[:2])


def _row(name: str, status: str, **values) -> dict:
    return {"file": name, "status": status, **values}


def _face_row(name: str, index: int, face: Face, scale: float) -> dict:
    """A face's row, its box in the original image's pixels."""
    return _row(name, "ok", face=index, x=round(face.x * scale), y=round(face.y * scale),
                w=round(face.w * scale), h=round(face.h * scale), det_score=round(face.score, 3))


def _predict(predictor: Predictor, waiting: list[tuple[dict, np.ndarray]]) -> None:
    """Fill age, gender and p_female into the waiting rows with one batched model call."""
    if not waiting:
        return
    rows, crops = zip(*waiting)
    ages, p_female = predictor.predict_arrays(np.stack(crops))
    for row, age, p in zip(rows, ages, p_female):
        prediction = Prediction(float(age), float(p))
        row.update(age=round(prediction.age, 1), gender=prediction.gender,
                   p_female=round(prediction.p_female, 4))
    waiting.clear()


def _frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as a frame with all COLUMNS; integer columns stay integers despite empty cells."""
    table = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("face", "x", "y", "w", "h"):
        table[column] = table[column].astype("Int64")
    for column in ("det_score", "age", "p_female"):
        table[column] = table[column].astype("float64")
    return table


def annotate(image: np.ndarray, detections: Union[pd.DataFrame, Iterable]) -> np.ndarray:
    """A copy of an RGB image with a box and a "female, 31" label per face.

    `detections`: rows of `analyze_*` for this image (a frame or dicts; rows that are not "ok"
    are skipped) or (Face, Prediction) pairs, as the live video page has them."""
    canvas = np.ascontiguousarray(image, dtype=np.uint8).copy()
    thickness = max(1, round(max(canvas.shape[:2]) / 400))
    for (x, y, w, h), gender, age in _boxes_and_labels(detections):
        colour = _COLOURS.get(gender, (255, 255, 255))
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, thickness)
        label = f"{gender}, {age:.0f}"
        font_scale = 0.45 * thickness
        (text_w, text_h), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        label_h = text_h + base + 2 * thickness
        top = y - label_h if y >= label_h else y + h  # above the box, or below it at the top edge
        cv2.rectangle(canvas, (x, top), (x + text_w + 2 * thickness, top + label_h), colour, -1)
        cv2.putText(canvas, label, (x + thickness, top + text_h + thickness), cv2.FONT_HERSHEY_SIMPLEX,
                    font_scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return canvas


_COLOURS = {"female": (255, 80, 160), "male": (60, 160, 255)}


def _boxes_and_labels(detections) -> Iterator[tuple[tuple[int, int, int, int], str, float]]:
    if isinstance(detections, pd.DataFrame):
        detections = detections.to_dict("records")
    for item in detections:
        if isinstance(item, Mapping):
            if item.get("status", "ok") == "ok":
                box = tuple(int(item[key]) for key in ("x", "y", "w", "h"))
                yield box, item["gender"], float(item["age"])
        else:
            face, prediction = item
            yield (face.x, face.y, face.w, face.h), prediction.gender, prediction.age


_DESCRIPTION = "Age and gender of every face in a folder of photos, one CSV row per face."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `batch` command's arguments."""
    parser.add_argument("folder", metavar="DIR", type=Path, help="folder of photos")
    parser.add_argument("--out", required=True, type=Path, help="CSV file to write (one row per face)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR,
                        help="model folder (default: %(default)s)")
    parser.add_argument("--recursive", action=argparse.BooleanOptionalAction, default=True,
                        help="include sub-folders (default: yes)")
    parser.add_argument("--aligned", action="store_true",
                        help="images are already aligned face crops (like UTKFace): skip detection")
    parser.add_argument("--full-range", choices=FULL_RANGE_MODES, default="auto",
                        help="when to add the slower detector for small, distant faces: auto (when the "
                             "fast one finds none or only small ones; default), always (group photos), never")


def cli_main(argv: list[str] | None = None) -> int:
    """`python -m core batch DIR --out results.csv ...`; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m core batch", description=_DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Exit code 0 when at least one image could be analysed, 1 when none could, 2 for bad
    arguments (missing folder or model, unwritable output)."""
    if not args.folder.is_dir():
        return _fail(f"not a folder: {args.folder}")
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        predictor = Predictor(args.model)
    except (OSError, ModelError) as exc:
        return _fail(str(exc))
    detector = None if args.aligned else FaceDetector(full_range=args.full_range)
    start = time.perf_counter()
    with tqdm(unit="img", desc="analysing", dynamic_ncols=True) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        table = analyze_folder(args.folder, predictor, detector, args.recursive, args.aligned, progress)
    elapsed = time.perf_counter() - start
    try:
        table.to_csv(args.out, index=False)
    except OSError as exc:
        return _fail(f"cannot write {args.out}: {exc.strerror or exc}")
    print(summary(table, elapsed, args.out))
    return 0 if table["status"].isin(["ok", "no_face"]).any() else 1


def summary(table: pd.DataFrame, elapsed: float, out: Path | None = None) -> str:
    """Plain-text totals: files, faces, no-face, errors (grouped by reason), images/s."""
    per_file = table.drop_duplicates("file")
    counts = per_file["status"].value_counts()
    files = len(per_file)
    lines = [f"{files} files, {int((table['status'] == 'ok').sum())} faces, "
             f"{counts.get('no_face', 0)} without a face, {counts.get('error', 0)} errors "
             f"in {elapsed:.1f} s ({files / max(elapsed, 1e-9):.1f} images/s)"]
    errors = per_file.loc[per_file["status"] == "error", "error"]
    reasons = Counter(str(text).split(" (")[0] for text in errors)
    lines += [f"  error: {reason} ({n})" for reason, n in reasons.most_common()]
    lines += [f"  note: {note}" for note in table.attrs.get("notes", [])]
    if out is not None:
        lines.append(f"results: {out}")
    return "\n".join(lines)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2
