"""Training from several datasets at once: each a `DataSource` (path, format, share of batches).

`load_sources` loads each with its own loader and stacks them into one table with a `source`
column (and `photo`: whether its images are photos whose face must be found and aligned, as
for a labelled folder, or ready crops, as UTKFace's). With more than one source, `file` becomes
`SOURCE/FILE`, so names stay unique across sources in the split, the teachers' caches and the
run's files; a single source keeps its plain names (older runs' split.csv stays valid).

`sampling_weights` says how often each training row is drawn: each source gets its `weight`
share of the batches (default: its share of the rows), and `balance` evens out the cells of
gender x age band x race inside a source (0: as the data come; 1: every cell alike), so that a
training set rich in young white men does not teach the model that faces are young white men.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..config import DATASET_FORMATS
from ..labels import age_band
from .datasets import DatasetError, DatasetWarning, load_dataset


@dataclass(frozen=True)
class DataSource:
    """One dataset to train from; `weight` is its share of training batches (None: its share of
    the rows), `name` how its rows are marked (default: the folder's or file's name)."""

    path: str
    format: str | None = None
    weight: float | None = None
    name: str = ""

    def __post_init__(self):
        object.__setattr__(self, "path", str(self.path))
        if not self.name:
            object.__setattr__(self, "name", Path(self.path).stem or "data")
        if self.format is not None and self.format not in DATASET_FORMATS:
            raise ValueError(f"dataset format must be one of {', '.join(DATASET_FORMATS)}, not {self.format!r}")
        if self.weight is not None and not (math.isfinite(self.weight) and self.weight > 0):
            raise ValueError(f"a source's weight must be a positive number, got {self.weight!r} for {self.path}")
        if "/" in self.name:
            raise ValueError(f"a source's name may not contain '/': {self.name!r}")

    def to_dict(self) -> dict:
        return {"path": self.path, "format": self.format, "weight": self.weight, "name": self.name}


def load_sources(sources: Sequence[DataSource]) -> pd.DataFrame:
    """The sources' rows in one table (see the module docstring); `attrs["sources"]` lists them
    with their row counts, `attrs["skipped"]` every skipped row as (SOURCE/FILE, reason)."""
    if not sources:
        raise DatasetError("no training data given")
    names = [source.name for source in sources]
    if len(set(names)) < len(names):
        raise DatasetError(f"two sources share a name ({', '.join(names)}): name them apart")
    tables, skipped, listed = [], [], []
    for source in sources:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DatasetWarning)
            table = load_dataset(source.path, source.format)
        for warning in caught:  # say which source the skipped rows belong to
            warnings.warn(f"{source.name}: {warning.message}", DatasetWarning, stacklevel=2)
        table = table.assign(source=source.name, photo=table.attrs.get("format") == "folder-csv")
        prefix = f"{source.name}/" if len(sources) > 1 else ""
        table["file"] = prefix + table["file"]
        skipped += [(prefix + name, reason) for name, reason in table.attrs.get("skipped", [])]
        listed.append({**source.to_dict(), "rows": int(len(table)), "format": table.attrs.get("format")})
        tables.append(table)
    combined = pd.concat(tables, ignore_index=True)
    for column in combined.columns.difference(tables[0].columns.union(["pixels"])):
        combined[column] = combined[column].fillna("")  # extra label columns of some sources only
    combined.attrs.update(skipped=skipped, sources=listed, source=", ".join(names),
                          format=tables[0].attrs.get("format") if len(tables) == 1 else "sources")
    return combined


def sampling_weights(table: pd.DataFrame, sources: Sequence[DataSource], balance: float = 0.0) -> np.ndarray:
    """The probability of drawing each row of `table` (its training rows) into a batch: each
    source gets its share (`DataSource.weight`, else its share of the rows), split inside the
    source in proportion to 1 / (rows of the row's gender x age band x race cell) ** balance."""
    given = {source.name: source.weight for source in sources}
    counts = table["source"].value_counts()
    shares = {name: given.get(name) or counts[name] / len(table) for name in counts.index}
    total = sum(shares.values())
    weights = np.zeros(len(table))
    for name, rows in table.groupby("source").groups.items():
        part = table.loc[rows]
        cells = part["gender"].astype(str) + "|" + part["age"].map(lambda a: age_band(a) if a >= 0 else "?") + "|" \
            + part["race"].astype(str)
        within = 1.0 / cells.map(cells.value_counts()).to_numpy(float) ** balance
        weights[table.index.get_indexer(rows)] = shares[name] / total * within / within.sum()
    return weights
