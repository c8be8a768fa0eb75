"""The label conventions every part of the project shares: genders, races, ages and age bands.

One place, because a convention written twice drifts: the gender codes of a CSV, the races of a
chart and the last age the model's age head predicts must mean the same everywhere.
"""
from __future__ import annotations

GENDERS = ("male", "female")  # index = gender code (UTKFace's): 0 = male, 1 = female
RACES = ("White", "Black", "Asian", "Indian", "Others")  # index = UTKFace race code
UNKNOWN_RACE = "Unknown"  # how a missing race (code -1) is named in tables, charts and predictions
RACE_NAMES = RACES + (UNKNOWN_RACE,)
MAX_AGE = 116  # the oldest UTKFace label, the last age a label may have and the age head predicts
AGE_BANDS = ((0, 12, "0-12"), (13, 19, "13-19"), (20, 39, "20-39"), (40, 59, "40-59"), (60, 200, "60+"))
AGE_BAND_NAMES = tuple(name for _, _, name in AGE_BANDS)
GENDER_THRESHOLD = 0.5  # p_female at or above this reads as female
# One colour per gender wherever genders are shown (boxes on photos and video, every chart).
GENDER_COLOURS = {"male": "#4C78A8", "female": "#E45756"}


def gender_of(p_female: float) -> str:
    """The gender name a probability of female stands for (the one threshold used everywhere)."""
    return GENDERS[int(p_female >= GENDER_THRESHOLD)]


UNKNOWN_GENDER = "unknown"  # how a missing gender (code -1) is named in tables and charts


def gender_name(code: int) -> str:
    """The name of a gender code; UNKNOWN_GENDER for -1 (a source that gives no gender)."""
    return GENDERS[code] if 0 <= code < len(GENDERS) else UNKNOWN_GENDER


def race_name(code: int) -> str:
    """The name of a race code; UNKNOWN_RACE for -1 (or any code outside RACES)."""
    return RACES[code] if 0 <= code < len(RACES) else UNKNOWN_RACE


def age_band(age: float) -> str:
    """Name of the age band (0-12, 13-19, 20-39, 40-59, 60+) an age falls in."""
    for low, high, name in AGE_BANDS:
        if age < high + 1:
            return name
    return AGE_BANDS[-1][2]
