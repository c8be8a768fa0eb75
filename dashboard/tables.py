"""Pure pandas reshaping between core's tables and what the charts and pages display.

Nothing here predicts or scores: labels are spelled out, rows filtered, and metrics written by
`core.evaluate.metrics.score` are laid out as tables. Kept free of Streamlit so it is unit-tested.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from core.labels import AGE_BANDS, GENDERS, age_band, race_name

CURVE_METRICS = {"loss": "Loss", "gender_accuracy": "Gender accuracy", "age_mae": "Age MAE (years)"}


def named(table: pd.DataFrame) -> pd.DataFrame:
    """A core dataset table with gender and race spelled out and the age band added."""
    return table.assign(
        gender=[GENDERS[g] for g in table["gender"]],
        race=[race_name(r) for r in table["race"]],
        age_band=table["age"].map(age_band),
    )


def filter_faces(table: pd.DataFrame, ages: tuple[int, int], genders: Iterable[str],
                 races: Iterable[str]) -> pd.DataFrame:
    """Rows of a `named` table within the age range (inclusive) and the chosen genders and races."""
    keep = table["age"].between(*ages) & table["gender"].isin(list(genders)) & table["race"].isin(list(races))
    return table[keep]


def bands_within(ages: tuple[int, int]) -> list[str]:
    """Names of the age bands that overlap an age range (inclusive): the rows a chart of the
    filtered faces should have, without bands the filter has emptied by construction."""
    return [name for low, high, name in AGE_BANDS if low <= ages[1] and high >= ages[0]]


def counts(table: pd.DataFrame, rows: str, columns: str, row_order: Iterable[str],
           column_order: Iterable[str]) -> pd.DataFrame:
    """Count of rows per (rows, columns) pair, every category present even when empty."""
    grid = pd.crosstab(pd.Categorical(table[rows], list(row_order)),
                       pd.Categorical(table[columns], list(column_order)), dropna=False)
    grid.index.name, grid.columns.name = rows, columns
    return grid


def confusion(block: Mapping) -> pd.DataFrame:
    """A confusion block of metrics.json ({labels, matrix}, rows = true) as a labelled table."""
    frame = pd.DataFrame(block["matrix"], index=block["labels"], columns=block["labels"])
    frame.index.name, frame.columns.name = "true", "predicted"
    return frame


def group_metrics(metrics: Mapping, key: str) -> pd.DataFrame:
    """One row per group of `metrics[key]` (by_age_band, by_gender, by_race): group, n, accuracy, MAE."""
    rows = [{"group": name, **values} for name, values in metrics.get(key, {}).items() if values.get("n")]
    return pd.DataFrame(rows, columns=["group", "n", "gender_accuracy", "age_mae"])


def history_long(histories: Mapping[str, pd.DataFrame], metric: str) -> pd.DataFrame:
    """Training and validation values of one metric for several runs, one row per (run, epoch, split)."""
    parts = []
    for run, history in histories.items():
        for split, column in (("train", metric), ("validation", f"val_{metric}")):
            if column in history:
                parts.append(pd.DataFrame({"run": run, "epoch": history["epoch"], "split": split,
                                           "value": history[column]}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["run", "epoch", "split", "value"])


def with_error(predictions: pd.DataFrame) -> pd.DataFrame:
    """Predictions with the signed age error (predicted - true) and whether the gender was right."""
    return predictions.assign(age_error=predictions["age_pred"] - predictions["age_true"],
                              gender_correct=predictions["gender_pred"] == predictions["gender_true"])


def worst_age_errors(predictions: pd.DataFrame, n: int) -> pd.DataFrame:
    """The n rows with the largest absolute age error, largest first, whatever their gender."""
    rows = with_error(predictions)
    return _largest(rows, rows["age_error"].abs(), n)


def gender_errors(predictions: pd.DataFrame, n: int) -> pd.DataFrame:
    """The n gender mistakes the model was surest of (p_female furthest from 0.5), surest first."""
    rows = with_error(predictions)
    wrong = rows[~rows["gender_correct"]]
    return _largest(wrong, (wrong["p_female"] - 0.5).abs(), n)


def _largest(rows: pd.DataFrame, size: pd.Series, n: int) -> pd.DataFrame:
    """The n rows of largest `size` (one value per row), largest first, ties in table order."""
    return rows.iloc[np.argsort(-size.to_numpy(), kind="stable")[:n]]


def people(results: pd.DataFrame) -> pd.DataFrame:
    """The faces found by a batch analysis (status ok), with their age band."""
    found = results[results["status"] == "ok"]
    return found.assign(age_band=found["age"].map(age_band))


def interval_coverage(metrics: Mapping) -> pd.DataFrame:
    """Coverage and median width of the age intervals per age band, by predicted and by true age
    (`metrics["age_interval"]` of `core.evaluate.metrics.score`); empty when the model has no intervals."""
    block = metrics.get("age_interval") or {}
    rows = [{"by": by.removeprefix("by_").replace("_band", " age"), "band": band, **values}
            for by in ("by_predicted_band", "by_true_band") for band, values in block.get(by, {}).items()
            if values.get("n")]
    return pd.DataFrame(rows, columns=["by", "band", "n", "coverage", "median_width"])


def age_checks(metrics: Mapping) -> pd.DataFrame:
    """One row per age threshold of `metrics["age_checks"]`: share decided, wrong, false over/under."""
    rows = [{"threshold": int(threshold), **values} for threshold, values in (metrics.get("age_checks") or {}).items()]
    return pd.DataFrame(rows, columns=["threshold", "n", "decided", "uncertain", "wrong_of_decided", "false_over",
                                       "false_under"])


def with_age_range(results: pd.DataFrame) -> pd.DataFrame:
    """Batch results with the interval as people read it ("25-31") beside the point age."""
    ranged = results["age_low"].notna() & results["age_high"].notna()
    text = results["age_low"].astype("string") + "-" + results["age_high"].astype("string")
    shown = results.copy()
    shown.insert(shown.columns.get_loc("age") + 1, "age_range", text.where(ranged, ""))
    return shown
