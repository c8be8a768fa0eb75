"""Pure pandas reshaping between core's tables and what the charts and pages display.

Nothing here predicts or scores: labels are spelled out, rows filtered, and metrics written by
`core.evaluate.metrics.score` are laid out as tables. Kept free of Streamlit so it is unit-tested.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from core.labels import AGE_BANDS, GENDERS, age_band, gender_name, race_name

CURVE_METRICS = {"loss": "Loss", "gender_accuracy": "Gender accuracy", "age_mae": "Age MAE (years)"}
# What the Evaluation page reads of metrics.json and predictions.csv (`core.evaluate.metrics.score`)
HEADLINE_METRICS = ("n", "gender_accuracy", "age_mae", "age_rmse", "age_within_5_years", "age_bias")
GROUP_KEYS = ("by_age_band", "by_gender", "by_race")
PREDICTION_COLUMNS = ("file", "age_true", "age_pred", "gender_true", "gender_pred", "p_female")


def named(table: pd.DataFrame) -> pd.DataFrame:
    """A core dataset table with gender and race spelled out ("unknown" where a source gives
    none) and the age band added (empty where the age is unknown)."""
    return table.assign(
        gender=[gender_name(g) for g in table["gender"]],
        race=[race_name(r) for r in table["race"]],
        age_band=table["age"].map(lambda age: age_band(age) if age >= 0 else ""),
    )


def filter_faces(table: pd.DataFrame, ages: tuple[int, int], genders: Iterable[str],
                 races: Iterable[str], keep_unknown_age: bool = True) -> pd.DataFrame:
    """Rows of a `named` table within the age range (inclusive) and the chosen genders and races.
    Rows without an age are in no range: they are kept only with `keep_unknown_age` (the page
    passes it while the range is the whole range, so narrowing the ages shows only faces known
    to be of those ages) and are left out of age charts either way."""
    in_range = table["age"].between(*ages) | ((table["age"] < 0) & keep_unknown_age)
    keep = in_range & table["gender"].isin(list(genders)) & table["race"].isin(list(races))
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


def results_problem(metrics, predictions: pd.DataFrame) -> str | None:
    """What in a run's metrics.json or predictions.csv the Evaluation page cannot show (a value
    of the wrong type, a missing block or column), in words; None when it can show them all.
    The files are the run's, and a hand-edited or foreign one must not break the page."""
    def number(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    if not isinstance(metrics, Mapping):
        return "metrics.json is not a JSON object"
    for key in HEADLINE_METRICS:
        if not number(metrics.get(key)):
            return f"metrics.json: {key} is {metrics.get(key)!r}, not a number"
    for key in ("gender_confusion", "age_band_confusion"):
        block = metrics.get(key)
        try:
            confusion(block).to_numpy(dtype=float)
        except (TypeError, ValueError, KeyError, AttributeError):
            return f"metrics.json: {key} is not a confusion table ({{labels, matrix}})"
    for key in GROUP_KEYS:
        groups = metrics.get(key, {})
        if not isinstance(groups, Mapping) or not all(
                isinstance(row, Mapping) and all(row.get(name) is None or number(row.get(name))
                                                 for name in ("n", "gender_accuracy", "age_mae"))
                for row in groups.values()):
            return f"metrics.json: {key} is not a table of groups with numbers"
    reliability = metrics.get("gender_reliability")
    if reliability is not None and not (isinstance(reliability, Mapping) and number(reliability.get("ece")) and all(
            isinstance(row, Mapping) and all(number(row.get(name)) for name in ("n", "confidence", "accuracy"))
            for row in reliability.get("bins", ()))):
        return "metrics.json: gender_reliability is not a list of numbered bins"
    interval = metrics.get("age_interval")
    if interval and not (isinstance(interval, Mapping) and number(interval.get("coverage"))
                         and number(interval.get("median_width"))):
        return "metrics.json: age_interval lacks its coverage or median width"
    missing = [column for column in PREDICTION_COLUMNS if column not in predictions]
    if missing:
        return f"predictions.csv lacks the column(s) {', '.join(missing)}"
    wrong = [column for column in ("age_true", "age_pred", "p_female") if not pd.api.types.is_numeric_dtype(
        predictions[column])]
    return f"predictions.csv: {', '.join(wrong)} not numbers" if wrong else None


def confusion(block: Mapping) -> pd.DataFrame:
    """A confusion block of metrics.json ({labels, matrix}, rows = true) as a labelled table."""
    frame = pd.DataFrame(block["matrix"], index=block["labels"], columns=block["labels"])
    frame.index.name, frame.columns.name = "true", "predicted"
    return frame


GROUP_TITLES = {"by_age_band": "age band", "by_gender": "gender", "by_race": "race", "by_bracket": "age bracket"}


def groupings(metrics: Mapping) -> dict[str, str]:
    """The breakdowns a metrics dict holds, title -> key: age band, gender and race, the age
    bracket when the set gives brackets, and one per extra label column of the set (album, ...)."""
    keys = [key for key in metrics if key.startswith("by_") and isinstance(metrics[key], Mapping)]
    return {GROUP_TITLES.get(key, key[3:].replace("_", " ")): key for key in keys}


def group_metrics(metrics: Mapping, key: str) -> pd.DataFrame:
    """One row per group of `metrics[key]` (by_age_band, by_bracket, by_album, ...): group, n,
    gender accuracy, age MAE and the share of ages inside the true bracket (empty where none)."""
    rows = [{"group": name, **values} for name, values in metrics.get(key, {}).items() if values.get("n")]
    return pd.DataFrame(rows, columns=["group", "n", "gender_accuracy", "age_mae", "age_in_bracket"])


def headline(metrics: Mapping) -> list[tuple[str, str, str | None]]:
    """(label, value, help) of the figures a metrics dict has, in the order a reader wants them:
    faces, gender accuracy and each gender's recall, then the age figures the set allows (exact
    ages: MAE, RMSE, within 5 years, bias; brackets: in bracket, distance to the bracket)."""
    shown = [("Faces", f"{metrics['n']:,}", None)]
    if metrics.get("gender_accuracy") is not None:
        shown.append(("Gender accuracy", f"{metrics['gender_accuracy']:.1%}", None))
        recall = metrics.get("gender_recall", {})
        if recall.get("female") is not None and recall.get("male") is not None:
            shown.append(("Women / men recognised", f"{recall['female']:.1%} / {recall['male']:.1%}",
                          "recall: the share of women read as women, of men read as men"))
    if metrics.get("age_mae") is not None:
        shown += [("Age MAE (years)", f"{metrics['age_mae']:.2f}", None),
                  ("Age RMSE (years)", f"{metrics['age_rmse']:.2f}", None),
                  ("Within 5 years", f"{metrics['age_within_5_years']:.1%}", None),
                  ("Age bias (years)", f"{metrics['age_bias']:+.2f}", "mean of predicted - true age")]
    if metrics.get("age_in_bracket") is not None:
        shown += [("Age in its bracket", f"{metrics['age_in_bracket']:.1%}",
                   "predicted age in [lo, hi + 1) of the true bracket"),
                  ("Outside the bracket by", f"{metrics['age_bracket_distance']:.2f} years", "mean, 0 inside")]
    return shown


def history_long(histories: Mapping[str, pd.DataFrame], metric: str,
                 planned: Mapping[str, int] | None = None) -> pd.DataFrame:
    """Training and validation values of one metric for several runs, one row per (run, epoch,
    split); with each run's `planned` epochs also `progress` (epoch / planned), so that a
    10-epoch run and a 40-epoch one can be read on one axis."""
    parts = []
    for run, history in histories.items():
        for split, column in (("train", metric), ("validation", f"val_{metric}")):
            if column in history:
                parts.append(pd.DataFrame({"run": run, "epoch": history["epoch"], "split": split,
                                           "value": history[column]}))
    long = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["run", "epoch", "split", "value"])
    if planned is not None:
        long["progress"] = long["epoch"] / long["run"].map(lambda run: max(1, planned.get(run) or 1))
    return long


def with_error(predictions: pd.DataFrame) -> pd.DataFrame:
    """Predictions with the signed age error (predicted - true) and whether the gender was right."""
    return predictions.assign(age_error=predictions["age_pred"] - predictions["age_true"],
                              gender_correct=predictions["gender_pred"] == predictions["gender_true"])


def worst_age_errors(predictions: pd.DataFrame, n: int) -> pd.DataFrame:
    """The n rows with the largest absolute age error, largest first, whatever their gender."""
    rows = with_error(predictions)
    rows = rows[rows["age_error"].notna()]  # rows with a bracket or no age have no error in years
    return _largest(rows, rows["age_error"].abs(), n)


def gender_errors(predictions: pd.DataFrame, n: int) -> pd.DataFrame:
    """The n gender mistakes the model was surest of (p_female furthest from 0.5), surest first."""
    rows = with_error(predictions)
    wrong = rows[~rows["gender_correct"] & rows["gender_true"].isin(GENDERS)]
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
