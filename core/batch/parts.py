"""Batch results as a folder of Parquet parts: `python -m core batch ... --out results.parquet`.

For big runs a single CSV grows slow to reopen and one file is a poor unit of progress: here rows
are written in parts of PART_ROWS rows, each written under a temporary name and renamed when
complete, so a killed run leaves only whole parts behind. Rows not yet in a part are also
appended, as they come, to a journal (JOURNAL, a results CSV flushed after every model batch
and emptied when a part is written), so a kill loses no more than with a CSV output: at most
the batch in flight. `--resume` keeps the parts and the journal's whole files (`resume_parts`).
`pandas.read_parquet("results.parquet")` (or pyarrow, Spark, Ray) reads the folder as one table:
Parquet readers skip names starting with "." or "_". Text is stored as it is: no spreadsheet
quoting, unlike the CSV.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..analysis.results import COLUMN_TYPES, results_frame
from .csvfile import CsvWriter, kept_rows, records

SUFFIX = ".parquet"
PART_ROWS = 50_000
JOURNAL = ".journal.csv"  # the rows written since the last part
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
    """Collects rows, journals them, and writes them as the folder's next part once enough
    have come (and on close)."""

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
        self._handle = (folder / JOURNAL).open("w", newline="", encoding="utf-8")  # resume_parts emptied it
        self._journal = CsvWriter(self._handle, header=True)

    def write(self, rows: list[dict]) -> None:
        unknown = {key for row in rows for key in row} - set(SCHEMA.names)
        if unknown:
            raise ValueError(f"not output columns: {', '.join(sorted(unknown))}")
        self._journal.write(rows)
        self._rows += rows
        if len(self._rows) >= PART_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        _write_part(self._folder, self._number, self._rows)
        self._number, self._rows = self._number + 1, []
        self._handle.seek(0)
        self._handle.truncate()
        self._journal = CsvWriter(self._handle, header=True)

    def close(self) -> None:
        """Write what is left as a last part; the journal goes (also on Ctrl-C: rows are whole images)."""
        self.flush()
        self._handle.close()
        (self._folder / JOURNAL).unlink(missing_ok=True)


def _write_part(folder: Path, number: int, rows: list[dict]) -> None:
    part = folder / f"part-{number:05d}{SUFFIX}"
    partial = folder / f".{part.name}.partial"
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), partial)
    partial.replace(part)


def resume_parts(folder: Path) -> list[dict]:
    """The rows of an interrupted run: every part's, and the journal's rows of files not in a
    part (a kill may come between writing a part and emptying the journal), all but the last
    file's; those journal rows become a part of their own, so the folder holds all that is kept."""
    rows = records(results_frame(read_parts(folder).to_dict("records")))
    journal = kept_rows(folder / JOURNAL) if folder.is_dir() else []
    in_parts = {row["file"] for row in rows}
    pending = [row for row in journal if row["file"] not in in_parts]
    if pending:
        existing = _parts(folder)
        _write_part(folder, _number(existing[-1]) + 1 if existing else 0, pending)
    (folder / JOURNAL).unlink(missing_ok=True)
    return rows + pending
