"""Age intervals that hold what they promise: "25-31 (80 %)" contains the true age 8 times in 10.

The age head outputs a distribution over 0..max_age, but its spread was trained against a fixed
2.5-year label blur, not against the model's real errors, so its own quantiles are not honest
intervals. We keep its shape and fit its width: for a face with point age `e` (the expectation)
and distribution quantiles q10 and q90, the interval at coverage c is

    round(e - k * (e - q10)) .. round(e + k * (q90 - e))      (whole years, inclusive)

where the factor `k` is fitted per age band (by predicted age, the only age known at inference)
on the VALIDATION split (split-conformal: k is the ceil((n + 1) c)-th smallest factor that would
have covered each validation face), for a grid of coverages. Bands with too few validation faces
share the pooled factor. The spread's shape makes intervals asymmetric where errors are (near 0,
in old age) and narrow where the model is sure; the per-band factor fixes the level.

Gender gets temperature scaling: p_female = sigmoid(logit / T), T chosen on the same validation
faces to minimise the log-loss (a grid of 0.5-2.0). Why: a model distilled from soft teacher
targets is under-confident (its 93 % answers are right 97 % of the time), and people read
`gender_confidence` as a probability. T = 1 leaves the model's own probabilities.

`core.evaluate.calibrate` fits and writes `calibration.json` into the run folder (`python -m core
calibrate`, and training at its end); `Predictor` reads it.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..labels import AGE_BAND_NAMES, age_band
from ..runs import CALIBRATION_FILE, ModelError, model_folder

SPREAD_QUANTILES = (0.1, 0.9)  # the distribution's range whose width the factor scales
LEVELS = tuple(round(0.5 + 0.01 * i, 2) for i in range(50))  # coverages fitted: 0.50 .. 0.99
MIN_BAND_FACES = 50  # fewer validation faces than this in a band: it uses the pooled factor
MIN_SPREAD = 0.5  # years; keeps a one-year-sharp distribution from making a zero-width interval


@dataclass(frozen=True)
class AgeCalibration:
    """Interval factors per age band and coverage level, the gender temperature, and where they
    were fitted."""

    factors: dict[str, tuple[float, ...]]  # band -> factor at each of LEVELS
    faces: dict[str, int]  # validation faces per band (by predicted age)
    source: str  # what the factors were fitted on
    gender_temperature: float = 1.0  # p_female = sigmoid(logit / T); files without it: 1

    def tempered(self, p_female: np.ndarray) -> np.ndarray:
        """p_female with the gender temperature applied."""
        return temper(p_female, self.gender_temperature)

    def factor(self, band: str, coverage: float) -> float:
        if not LEVELS[0] <= coverage <= LEVELS[-1]:
            raise ValueError(f"interval coverage must be between {LEVELS[0]} and {LEVELS[-1]}, got {coverage}")
        return float(np.interp(coverage, LEVELS, self.factors[band]))

    def intervals(self, dist: np.ndarray, coverage: float) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) whole-year bounds, inclusive, for age distributions of shape (n, ages)."""
        expected, down, up = spreads(dist)
        bands = [age_band(age) for age in expected]
        k = np.array([self.factor(band, coverage) for band in bands])
        top = dist.shape[1] - 1
        return (np.clip(np.floor(expected - k * down + 0.5), 0, top).astype(int),
                np.clip(np.floor(expected + k * up + 0.5), 0, top).astype(int))

    def to_dict(self) -> dict:
        return {"method": "conformal factor on the age distribution's q10-q90 spread, per band of predicted age",
                "spread_quantiles": list(SPREAD_QUANTILES), "levels": list(LEVELS),
                "factors": {band: list(ks) for band, ks in self.factors.items()},
                "faces": self.faces, "gender_temperature": self.gender_temperature, "source": self.source}

    @classmethod
    def from_dict(cls, data: dict) -> "AgeCalibration":
        if tuple(data["levels"]) != LEVELS or tuple(data["spread_quantiles"]) != SPREAD_QUANTILES:
            raise ValueError("it was written by another version of the calibration; run `python -m core calibrate`")
        return cls({band: tuple(data["factors"][band]) for band in AGE_BAND_NAMES}, data["faces"], data["source"],
                   float(data.get("gender_temperature", 1.0)))

    def save(self, folder: str | Path) -> Path:
        path = model_folder(folder) / CALIBRATION_FILE
        fields = (f" {json.dumps(key)}: {json.dumps(value)}" for key, value in self.to_dict().items())
        path.write_text("{\n" + ",\n".join(fields) + "\n}\n")  # one line per field: small, diffable
        return path


def load_calibration(folder: str | Path) -> AgeCalibration | None:
    """The run's calibration, None when it has none (then no intervals are reported)."""
    path = model_folder(folder) / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        return AgeCalibration.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"age calibration {path} is unreadable: {exc}") from exc


def spreads(dist: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(expected age, distance down to q10, distance up to q90) of each distribution."""
    dist = np.asarray(dist, np.float64)
    ages = np.arange(dist.shape[1])
    expected = dist @ ages
    cumulative = np.cumsum(dist, axis=1) / dist.sum(axis=1, keepdims=True)
    low, high = ((cumulative < q).sum(axis=1) for q in SPREAD_QUANTILES)
    return expected, np.maximum(expected - low, MIN_SPREAD), np.maximum(high - expected, MIN_SPREAD)


def needed_factors(dist: np.ndarray, true_ages: np.ndarray) -> np.ndarray:
    """The smallest factor whose rounded interval contains each true age (0 when the point
    age already rounds to it): round(x) <= y  <=>  x < y + 0.5."""
    expected, down, up = spreads(dist)
    true_ages = np.asarray(true_ages, np.float64)
    return np.maximum.reduce([(expected - true_ages - 0.5) / down, (true_ages - 0.5 - expected) / up,
                              np.zeros_like(expected)])


def _conformal(scores: np.ndarray) -> tuple[float, ...]:
    """The split-conformal quantile of the scores at each level (finite-sample corrected),
    to 4 decimals as the file keeps them."""
    ordered = np.sort(scores)
    n = len(ordered)
    return tuple(round(float(ordered[min(n - 1, math.ceil((n + 1) * level) - 1)]), 4) for level in LEVELS)


TEMPERATURES = tuple(round(0.5 + 0.05 * i, 2) for i in range(31))  # 0.5 .. 2.0


def temper(p_female: np.ndarray, temperature: float) -> np.ndarray:
    """sigmoid(logit(p) / T), in float32 like the model's output."""
    p = np.clip(np.asarray(p_female, np.float64), 1e-7, 1 - 1e-7)
    return (1.0 / (1.0 + np.exp(-np.log(p / (1 - p)) / temperature))).astype(np.float32)


def fit_temperature(p_female: np.ndarray, genders: np.ndarray) -> float:
    """The temperature of TEMPERATURES with the lowest log-loss of the tempered p_female."""
    y = np.asarray(genders, np.float64)

    def log_loss(t: float) -> float:
        q = np.clip(temper(p_female, t).astype(np.float64), 1e-7, 1 - 1e-7)
        return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))

    return min(TEMPERATURES, key=log_loss)


def fit(dist: np.ndarray, true_ages: np.ndarray, source: str, p_female: np.ndarray | None = None,
        genders: np.ndarray | None = None) -> AgeCalibration:
    """Factors from held-out faces (their age distributions and true ages), and the gender
    temperature when their raw p_female and genders are given (else 1). Faces whose age is
    unknown (-1) are left out of the factors, those whose gender is unknown out of the
    temperature."""
    true_ages = np.asarray(true_ages)
    aged = true_ages >= 0
    if not aged.any():
        raise ValueError("no faces with an exact age to calibrate on")
    scores = needed_factors(np.asarray(dist)[aged], true_ages[aged])
    bands = np.array([age_band(age) for age in spreads(np.asarray(dist)[aged])[0]])
    pooled = _conformal(scores)
    factors, faces = {}, {}
    for band in AGE_BAND_NAMES:
        mine = scores[bands == band]
        faces[band] = int(len(mine))
        factors[band] = _conformal(mine) if len(mine) >= MIN_BAND_FACES else pooled
    gendered = np.asarray(genders) >= 0 if genders is not None else None
    temperature = 1.0 if p_female is None or not gendered.any() else fit_temperature(
        np.asarray(p_female)[gendered], np.asarray(genders)[gendered])
    return AgeCalibration(factors, faces, source, temperature)


AGE_CHECKS = ("over", "under", "uncertain")


def age_check(low: float | None, high: float | None, threshold: float) -> str:
    """"over" when the whole interval is at or above the threshold, "under" when it is below,
    else (it straddles the threshold, or there is no interval) "uncertain"."""
    if low is None or high is None:
        return "uncertain"
    return "over" if low >= threshold else "under" if high < threshold else "uncertain"
