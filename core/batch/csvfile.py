"""The results CSV, as a run writes it and as a kill leaves it: `CsvWriter` appends rows with
spreadsheet-safe cells, flushed after every group, and `kept_rows` reads back what is certainly
whole (the CSV output, and the journal of rows not yet in a Parquet part, `core.batch.parts`)."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from ..analysis.results import COLUMNS, results_frame
from .spreadsheet import read_safe_csv, safe_cell


class CsvWriter:
    """Appends rows to the results CSV with spreadsheet-safe cells, flushed after every group."""

    def __init__(self, handle, header: bool):
        self._handle = handle
        self._writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="raise")
        if header:
            self._writer.writeheader()

    def write(self, rows: list[dict]) -> None:
        self._writer.writerows({key: safe_cell(value) for key, value in row.items()} for row in rows)
        self._handle.flush()


def kept_rows(path: Path) -> list[dict]:
    """The rows of a results CSV a run may have been killed while writing, worth keeping (None
    for empty cells): a half-written last line is dropped, and so are the rows of the last file
    (a kill may have cut between the rows of its faces). ValueError for a CSV of other columns."""
    if not path.is_file() or path.stat().st_size == 0:
        return []
    import pandas as pd

    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        raw = read_safe_csv(io.StringIO(text[:text.rfind("\n") + 1]))  # without a half-written last line
    except (ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"cannot resume from {path}: it is not a results CSV of this tool ({exc})") from exc
    if list(raw.columns) != COLUMNS:
        raise ValueError(f"cannot resume from {path}: its columns are not those of `batch` results")
    table = results_frame(raw.to_dict("records"))
    if not table.empty:
        table = table[table["file"] != table["file"].iloc[-1]]
    return records(table)


def records(table) -> list[dict]:
    """A results frame as rows, None for empty cells."""
    return table.astype(object).where(table.notna(), None).to_dict("records")
