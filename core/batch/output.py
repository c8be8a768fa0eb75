"""Where batch results go: a CSV (one file, flushed after every model batch) or, for
`--out NAME.parquet`, a folder of Parquet parts (`core.batch.parts`); reading them back, and
what `--resume` keeps of an interrupted run.

Rows are `core.analysis.results` rows: the writers refuse a row with a column the results do not
declare, so nothing a result carries is silently left out of a file.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ..analysis.results import results_frame
from .csvfile import CsvWriter, kept_rows
from .spreadsheet import read_safe_csv

if TYPE_CHECKING:  # pandas and pyarrow are imported where needed: a CSV run needs neither
    import pandas as pd

    from .parts import PartsWriter


@contextmanager
def open_output(path: Path, append: bool) -> Iterator[CsvWriter | PartsWriter]:
    """A writer for the results at `path` (CSV, or Parquet parts for a .parquet name)."""
    if is_parts(path):
        from .parts import PartsWriter

        writer = PartsWriter(path, append)
        try:
            yield writer
        finally:  # also on Ctrl-C: what was collected is whole images
            writer.close()
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
    """The rows of an interrupted run worth keeping (None for empty cells), rewritten so the
    output holds only them: of a CSV, all but a half-written last line and the rows of the last
    file (a kill may have cut between the rows of its faces), which is analysed again; of Parquet
    parts, every part and the whole files of the journal of rows not yet in a part."""
    if is_parts(out):
        from .parts import resume_parts

        return resume_parts(out)
    rows = kept_rows(out)
    if not out.is_file():
        return rows
    partial = out.with_name(f".partial-{out.name}")
    with open_output(partial, append=False) as writer:
        writer.write(rows)
    os.replace(partial, out)
    return rows
