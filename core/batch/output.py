"""Where batch results go: a CSV (one file, flushed after every model batch) or, for
`--out NAME.parquet`, a folder of Parquet parts (`core.batch.parts`); reading them back, and
what `--resume` keeps of an interrupted run.

Rows are `core.analysis.results` rows: the writers refuse a row with a column the results do not
declare, so nothing a result carries is silently left out of a file.
"""
from __future__ import annotations

import csv
import io
import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ..analysis.results import COLUMNS, results_frame
from .spreadsheet import read_safe_csv, safe_cell

if TYPE_CHECKING:  # pandas and pyarrow are imported where needed: a CSV run needs neither
    import pandas as pd

    from .parts import PartsWriter


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


@contextmanager
def open_output(path: Path, append: bool) -> Iterator[CsvWriter | PartsWriter]:
    """A writer for the results at `path` (CSV, or Parquet parts for a .parquet name)."""
    if is_parts(path):
        from .parts import PartsWriter

        writer = PartsWriter(path, append)
        try:
            yield writer
        finally:  # also on Ctrl-C: what was collected is whole images
            writer.flush()
        return
    with path.open("a" if append else "w", newline="", encoding="utf-8") as handle:
        yield CsvWriter(handle, header=not append)


def is_parts(out: Path) -> bool:
    """`--out NAME.parquet` is a folder of Parquet parts (`core.batch.parts`), anything else a CSV."""
    return out.suffix == ".parquet"


def read_results(path: Path) -> pd.DataFrame:
    """The results a batch wrote (a CSV, or a folder of Parquet parts), with the original file
    names and the column types of `results_frame`."""
    if is_parts(path):
        from .parts import read_parts

        return results_frame(read_parts(path).to_dict("records"))
    return results_frame(read_safe_csv(path).to_dict("records"))


def rows_kept_for_resume(out: Path) -> list[dict]:
    """The rows of an interrupted run worth keeping (None for empty cells), rewritten so the CSV
    holds only them: a half-written last line is dropped, and so are the rows of the last file
    (a kill may have cut between the rows of its faces), which is analysed again. Parquet parts
    are written whole, so all of theirs are kept."""
    if is_parts(out):
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
    table = results_frame(raw.to_dict("records"))
    if not table.empty:
        table = table[table["file"] != table["file"].iloc[-1]]
    rows = _records(table)
    partial = out.with_name(f".partial-{out.name}")
    with open_output(partial, append=False) as writer:
        writer.write(rows)
    os.replace(partial, out)
    return rows


def _records(table: pd.DataFrame) -> list[dict]:
    return table.astype(object).where(table.notna(), None).to_dict("records")
