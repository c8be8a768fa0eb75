"""Scores of a predictions table: overall, per age band / gender / race, confusions, and how far
the answers can be trusted (`core.evaluate.reliability`). Pure pandas, so it can be checked by hand.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..labels import AGE_BAND_NAMES, GENDERS, RACE_NAMES, age_band, gender_name, gender_of, race_name
from .reliability import age_check_rates, gender_reliability, interval_coverage

PREDICTION_COLUMNS = ["file", "age_true", "age_pred", "age_low", "age_high", "gender_true", "gender_pred", "p_female",
                      "race"]
BRACKET_COLUMNS = ["bracket_lo", "bracket_hi"]  # the true age bracket, when a set gives brackets
MAX_GROUPS = 50  # an extra label column with more values than this is an identifier, not a group


def predictions_table(table: pd.DataFrame, ages: np.ndarray, p_female: np.ndarray,
                      intervals: tuple[np.ndarray, np.ndarray] | None = None,
                      groups: list[str] | None = None, brackets: bool | None = None) -> pd.DataFrame:
    """One row per image with true and predicted labels, genders and races spelled out, and the
    age interval (at `AnswerSettings().interval`) when the model is calibrated. A true age that is
    unknown or a bracket leaves `age_true` empty; brackets add `bracket_lo`/`bracket_hi`, and the
    extra label columns `groups` (album, source, ...; default: `group_columns(table)`) follow,
    for breakdowns. A caller scoring a set chunk by chunk passes `groups` and `brackets`
    (whether the set has brackets) found on the whole set, so every chunk has the same columns."""
    low, high = intervals if intervals is not None else (pd.array([pd.NA] * len(ages), "Int64"),) * 2
    lo, hi = (table[column].to_numpy() if column in table else table["age"].to_numpy() for column in ("age_lo", "age_hi"))
    exact = (lo == hi) & (lo >= 0)
    predictions = pd.DataFrame({
        "file": table["file"].to_numpy(),
        "age_true": pd.Series(table["age"].to_numpy()).astype("Int64").where(exact, pd.NA).array,
        "age_pred": np.round(ages.astype(float), 2),
        "age_low": pd.array(low, "Int64"),
        "age_high": pd.array(high, "Int64"),
        "gender_true": [gender_name(g) if g >= 0 else "" for g in table["gender"]],
        "gender_pred": [gender_of(p) for p in p_female],
        "p_female": np.round(p_female.astype(float), 4),
        "race": [race_name(r) for r in table["race"]],
    })
    if has_brackets(table) if brackets is None else brackets:
        bracket = (lo != hi) & (lo >= 0)
        predictions["bracket_lo"] = pd.Series(lo).astype("Int64").where(bracket, pd.NA).array
        predictions["bracket_hi"] = pd.Series(hi).astype("Int64").where(bracket, pd.NA).array
    for column in group_columns(table) if groups is None else groups:
        predictions[column] = table[column].astype(str).to_numpy()
    return predictions


def has_brackets(table: pd.DataFrame) -> bool:
    """Whether some row's true age is a bracket."""
    return "age_lo" in table and bool((table["age_lo"] != table["age_hi"]).any())


def group_columns(table: pd.DataFrame) -> list[str]:
    """A set's extra label columns worth a breakdown (album, set, source...): text columns other
    than the project's own, with 2 to MAX_GROUPS values."""
    own = {"file", "path", "age", "gender", "race", "age_lo", "age_hi", "pixels", "photo", "split", *PREDICTION_COLUMNS,
           *BRACKET_COLUMNS}
    return [column for column in table.columns if column not in own and 2 <= table[column].nunique() <= MAX_GROUPS]


def _summary(rows: pd.DataFrame) -> dict:
    """n, gender accuracy on the rows with a gender, age MAE on those with an exact age, and the
    share of predicted ages inside the true bracket on those with a bracket (None where none)."""
    gendered = rows[rows["gender_true"].isin(GENDERS)]
    aged = rows[rows["age_true"].notna()]
    summary = {
        "n": int(len(rows)),
        "gender_accuracy": float((gendered["gender_pred"] == gendered["gender_true"]).mean()) if len(gendered) else None,
        "age_mae": float((aged["age_pred"] - aged["age_true"].astype(float)).abs().mean()) if len(aged) else None,
    }
    if "bracket_lo" in rows:
        inside, _ = _bracket_hits(rows)
        summary["age_in_bracket"] = float(inside.mean()) if len(inside) else None
    return summary


def inside_bracket(age, lo, hi):
    """Whether predicted ages (arrays or Series) count as inside true brackets [lo, hi] of whole
    years: a predicted age is a real number and a bracket's last year runs to its end, so the
    test is lo <= age < hi + 1 (a child of 6 years and 8 months is in 4-6)."""
    return (age >= lo) & (age < hi + 1)


def _bracket_hits(rows: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """For the rows with a true bracket: whether the predicted age is inside it (`inside_bracket`),
    and how many years it lies outside [lo, hi + 1) (0 inside)."""
    bracketed = rows[rows["bracket_lo"].notna()]
    age, lo, hi = bracketed["age_pred"], bracketed["bracket_lo"].astype(float), bracketed["bracket_hi"].astype(float)
    return inside_bracket(age, lo, hi), (lo - age).clip(lower=0) + (age - hi - 1).clip(lower=0)


def _confusion(true: pd.Series, pred: pd.Series, labels: tuple[str, ...]) -> dict:
    matrix = pd.crosstab(pd.Categorical(true, labels), pd.Categorical(pred, labels), dropna=False)
    return {"labels": list(labels), "matrix": matrix.to_numpy().astype(int).tolist(),
            "rows": "true", "columns": "predicted"}


def score(predictions: pd.DataFrame) -> dict:
    """All metrics for a predictions table (`predictions_table`): overall; by age band, gender
    and race; women's and men's recall; with brackets, the in-bracket rate and the distance to
    the bracket, overall and per bracket; per value of every extra label column."""
    if predictions.empty:
        raise ValueError("no predictions to score")
    rows = predictions.assign(band_true=predictions["age_true"].map(lambda a: age_band(a) if pd.notna(a) else ""),
                              band_pred=predictions["age_pred"].map(age_band))
    aged = rows[rows["age_true"].notna()]
    gendered = rows[rows["gender_true"].isin(GENDERS)]
    error = aged["age_pred"] - aged["age_true"].astype(float)
    metrics = _summary(rows)
    by_gender = {gender: _summary(rows[rows["gender_true"] == gender]) for gender in GENDERS}
    metrics.update({
        "gender_recall": {gender: values["gender_accuracy"] for gender, values in by_gender.items()},
        "by_age_band": {band: _summary(rows[rows["band_true"] == band]) for band in AGE_BAND_NAMES},
        "by_gender": by_gender,
        "by_race": {race: _summary(rows[rows["race"] == race]) for race in RACE_NAMES if (rows["race"] == race).any()},
    })
    if len(aged):
        metrics.update({
            "age_rmse": float(np.sqrt((error ** 2).mean())),
            "age_median_abs_error": float(error.abs().median()),
            "age_bias": float(error.mean()),
            "age_within_5_years": float((error.abs() <= 5).mean()),
            "age_error_quantiles": {str(q): float(error.quantile(q)) for q in (0.05, 0.25, 0.5, 0.75, 0.95)},
            "age_band_confusion": _confusion(aged["band_true"], aged["band_pred"], AGE_BAND_NAMES),
        })
    if len(gendered):
        metrics.update(gender_confusion=_confusion(gendered["gender_true"], gendered["gender_pred"], GENDERS),
                       gender_reliability=gender_reliability(gendered))
    if "bracket_lo" in rows and rows["bracket_lo"].notna().any():
        inside, distance = _bracket_hits(rows)
        brackets = rows["bracket_lo"].astype("string") + "-" + rows["bracket_hi"].astype("string")
        order = sorted(brackets.dropna().unique(), key=lambda name: int(name.split("-")[0]))
        metrics.update(age_bracket_distance=float(distance.mean()),
                       by_bracket={name: {**_summary(rows[brackets == name]),
                                          "age_bracket_distance": float(distance[brackets == name].mean())}
                                   for name in order})
    for column in [c for c in predictions.columns if c not in PREDICTION_COLUMNS + BRACKET_COLUMNS]:
        metrics[f"by_{column}"] = {str(value): _summary(rows[rows[column] == value])
                                   for value in sorted(rows[column].unique(), key=str)}
    if len(aged) and (coverage := interval_coverage(aged)) is not None:
        metrics.update(age_interval=coverage, age_checks=age_check_rates(aged))
    return metrics
