"""Batch results as a folder of Parquet parts: `python -m core batch ... --out results.parquet`.

For big runs a single CSV grows slow to reopen and one file is a poor unit of progress: here rows
are written in parts of at most PART_ROWS rows (or PART_SECONDS of work), each written under a
temporary name and renamed when complete, so a killed run leaves only whole parts behind and
`--resume` simply keeps them. `pandas.read_parquet("results.parquet")` (or pyarrow, Spark, Ray)
reads the folder as one table. Text is stored as it is: no spreadsheet quoting, unlike the CSV.
"""
from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..analysis.results import COLUMN_TYPES

SUFFIX = ".parquet"
PART_ROWS = 50_000
PART_SECONDS = 60.0
# The output columns with the types the results declare.
SCHEMA = pa.schema([(column, {int: pa.int64(), float: pa.float64(), str: pa.string()}[kind])
                    for column, kind in COLUMN_TYPES.items()])


def _parts(folder: Path) -> list[Path]:
    """The folder's complete parts, by number."""
    return sorted((part for part in folder.glob(f"part-*{SUFFIX}") if _number(part) is not None), key=_number)


def _number(part: Path) -> int | None:
    digits = part.name[len("part-"):-len(SUFFIX)]
    return int(digits) if digits.isdigit() else None


def read_parts(folder: Path) -> pd.DataFrame:
    """Every complete part's rows, in the order they were written (empty for a missing folder)."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file: a .parquet output is a folder of parts")
    tables = [pq.read_table(part, schema=SCHEMA) for part in _parts(folder)] if folder.is_dir() else []
    return (pa.concat_tables(tables) if tables else SCHEMA.empty_table()).to_pandas()


class PartsWriter:
    """Collects rows and writes them as the folder's next part once enough have come (and on close)."""

    def __init__(self, folder: Path, append: bool):
        folder.mkdir(parents=True, exist_ok=True)
        existing = _parts(folder)
        if not append:
            for part in existing:
                part.unlink()
        # after the highest part, not the count of parts: a gap (a part deleted) must not make
        # the next part overwrite a finished one
        self._folder, self._number = folder, (_number(existing[-1]) + 1 if append and existing else 0)
        self._rows: list[dict] = []
        self._since = time.monotonic()

    def write(self, rows: list[dict]) -> None:
        unknown = {key for row in rows for key in row} - set(SCHEMA.names)
        if unknown:
            raise ValueError(f"not output columns: {', '.join(sorted(unknown))}")
        self._rows += rows
        if len(self._rows) >= PART_ROWS or time.monotonic() - self._since >= PART_SECONDS:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        part = self._folder / f"part-{self._number:05d}{SUFFIX}"
        partial = self._folder / f".{part.name}.partial"
        pq.write_table(pa.Table.from_pylist(self._rows, schema=SCHEMA), partial)
        partial.replace(part)
        self._number, self._rows, self._since = self._number + 1, [], time.monotonic()
