"""Before a batch writes: what `--out` may be, and the settings recorded with the results.

Results are a user's work (hours of analysis) and `--out` a path they typed, so nothing is
written over a file that is not results of `batch` (`batch DIR --out DIR/photo.jpg` once turned
a photo into CSV text), and existing results are replaced only on `--overwrite` or continued on
`--resume`. The settings a run analyses with (folder, model, detector, answers) are written
beside the results (`settings_file`); `--resume` compares them with its own and refuses to mix
rows made another way into one file (a 90 % and a 50 % age range in one column). Plain files
and the standard library only: the CLI's start-up stays light.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..analysis.results import COLUMNS
from ..imaging.files import is_listed_image
from ..runs import LITERT_FILE
from .settings import BatchSettings

EXISTING = ("refuse", "resume", "overwrite")  # what to do with results already at --out
PARTS_SETTINGS = "_settings.json"  # inside a .parquet folder: Parquet readers skip names starting with _ or .
CSV_SETTINGS_SUFFIX = ".settings.json"  # beside a CSV: results.csv -> results.csv.settings.json


class OutputRefused(ValueError):
    """`--out` cannot be written as asked; the message says why and what to do."""


def settings_file(out: Path) -> Path:
    """Where the settings of the results at `out` are recorded."""
    return out / PARTS_SETTINGS if out.suffix == ".parquet" else out.with_name(out.name + CSV_SETTINGS_SUFFIX)


def check_out(out: Path, existing: str = "refuse") -> None:
    """Raise OutputRefused unless `out` may be written: it has no image's extension, and it is
    new, empty, or results of `batch` that `existing` says to resume or overwrite."""
    if existing not in EXISTING:
        raise ValueError(f"existing must be one of {', '.join(EXISTING)}, not {existing!r}")
    if is_listed_image(out):
        raise OutputRefused(f"--out {out} is named like an image: results go to a .csv file (or a .parquet folder)")
    if not out.exists() and not out.is_symlink():
        return
    if not is_results(out):
        what = "cannot resume from" if existing == "resume" else "will not write over"
        raise OutputRefused(f"{what} {out}: it is not a results {'folder' if out.suffix == '.parquet' else 'CSV'} "
                            "of this tool (nothing was changed; choose another --out)")
    if existing == "refuse" and not _empty(out):
        raise OutputRefused(f"{out} already holds results: --resume continues them, --overwrite replaces them")


def is_results(out: Path) -> bool:
    """Whether `out` is what `batch` writes there: a CSV starting with the results' header (or
    empty), or a folder holding only Parquet parts and their bookkeeping."""
    if out.suffix == ".parquet":
        return out.is_dir() and not out.is_symlink() and all(
            entry.name == PARTS_SETTINGS or entry.name.startswith((".", "part-")) for entry in out.iterdir())
    if not out.is_file() or out.is_symlink():
        return False
    with out.open("rb") as handle:
        head = handle.read(4096)
    return not head or head.split(b"\n", 1)[0].rstrip(b"\r") == ",".join(COLUMNS).encode()


def _empty(out: Path) -> bool:
    return not any(out.iterdir()) if out.is_dir() else out.stat().st_size == 0


def run_record(folder: str, recursive: bool, settings: BatchSettings) -> dict:
    """What the rows of a run depend on, as plain values: the folder, whether sub-folders count,
    the model (its path and a digest of its weights, so a retrained model is told apart), the
    detector and the answer settings."""
    settings = settings.with_absolute_model()
    model = Path(settings.model) / LITERT_FILE
    digest = hashlib.sha256(model.read_bytes()).hexdigest()[:16] if model.is_file() else None
    return {"folder": folder if "://" in folder else os.path.abspath(folder), "recursive": recursive,
            **settings.to_dict(), "model_digest": digest}


def write_record(out: Path, record: dict) -> None:
    """Record the settings of the results at `out` (replacing an earlier record whole)."""
    path = settings_file(out)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(partial, path)


def differences(out: Path, record: dict) -> list[str] | None:
    """How `record` differs from the one saved with the results at `out`, in words ("interval
    0.5, now 0.9"); None when the results have no (readable) record."""
    try:
        saved = json.loads(settings_file(out).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict):
        return None
    mine, theirs = _flat(record), _flat(saved)
    return [f"{key} {theirs.get(key)!r}, now {value!r}" for key, value in mine.items() if theirs.get(key) != value]


def _flat(record: dict) -> dict:
    """{"answers": {"interval": 0.8}} as {"interval": 0.8}: the names the flags use."""
    flat = {}
    for key, value in record.items():
        flat.update(_flat(value) if isinstance(value, dict) else {key: value})
    return flat
