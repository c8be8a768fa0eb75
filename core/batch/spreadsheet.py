"""CSV cells that spreadsheets will not run as formulas, and reading them back.

A file named `=HYPERLINK(...).jpg` written verbatim into a CSV becomes a live formula when the
CSV is opened in Excel or LibreOffice (CSV injection). Every text cell we write that starts
with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading apostrophe, which spreadsheets
show as plain text; a cell that itself starts with an apostrophe gets one more, so the rule
reverses exactly: `read_safe_csv` removes one leading apostrophe from every text cell.
"""
from __future__ import annotations

from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:  # imported by the functions that need it: writing a CSV row does not
    import pandas as pd

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
TEXT_COLUMNS = ("file", "error")


def safe_cell(value):
    """The value as written to a CSV: text that a spreadsheet would run gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def original_cell(value):
    """The value `safe_cell` was given."""
    return value[1:] if isinstance(value, str) and value.startswith("'") else value


def to_safe_csv(table: pd.DataFrame) -> str:
    """The table as CSV text with spreadsheet-safe text cells (for downloads)."""
    return table.map(safe_cell).to_csv(index=False)


def read_safe_csv(path: str | Path | IO[str]) -> pd.DataFrame:
    """A CSV written with `safe_cell`s, with the original text restored in the text columns."""
    import pandas as pd

    table = pd.read_csv(path, dtype={column: "string" for column in TEXT_COLUMNS}, keep_default_na=False,
                        na_values=[""])
    for column in TEXT_COLUMNS:
        if column in table:
            table[column] = table[column].map(original_cell, na_action="ignore").astype(object)
    return table
