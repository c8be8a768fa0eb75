"""The shipped model folder is complete, self-consistent, and its model card and predictions are
what the model actually computes (a retrained model with stale files beside it fails here)."""
import json

import numpy as np
import pandas as pd
import pytest

from core.evaluate.metrics import PREDICTION_COLUMNS, score
from core.inference.predictor import Predictor
from core.labels import AGE_BAND_NAMES

SHIPPED_FILES = ("model.keras", "model.json", "history.csv", "metrics.json", "predictions.csv", "split.csv",
                 "labels.csv", "MODEL_CARD.md")


@pytest.fixture(scope="module")
def shipped(default_model_dir):
    missing = [name for name in SHIPPED_FILES if not (default_model_dir / name).is_file()]
    assert not missing, f"models/default lacks {missing}"
    return {
        "dir": default_model_dir,
        "metrics": json.loads((default_model_dir / "metrics.json").read_text()),
        "predictions": pd.read_csv(default_model_dir / "predictions.csv"),
        "split": pd.read_csv(default_model_dir / "split.csv"),
        "settings": json.loads((default_model_dir / "model.json").read_text()),
    }


def test_files_fit_the_size_limit_and_hold_no_pixels(shipped):
    assert (shipped["dir"] / "model.keras").stat().st_size < 20 * 2**20
    labels = pd.read_csv(shipped["dir"] / "labels.csv")
    assert list(labels.columns)[:4] == ["file", "age", "gender", "race"]
    assert set(labels.columns) <= {"file", "age", "gender", "race", "age_lo", "age_hi", "source"}  # labels, no pixels
    assert set(labels["file"]) == set(shipped["split"]["file"])


def test_metrics_are_the_score_of_the_test_predictions(shipped):
    predictions, metrics = shipped["predictions"], shipped["metrics"]
    assert list(predictions.columns)[:len(PREDICTION_COLUMNS)] == PREDICTION_COLUMNS
    test_files = shipped["split"].loc[shipped["split"]["split"] == "test", "file"]
    assert set(predictions["file"]) == set(test_files) and metrics["split"] == "test"
    rescored = score(predictions)
    assert rescored["n"] == metrics["n"] == len(test_files)
    assert rescored["gender_accuracy"] == pytest.approx(metrics["gender_accuracy"], abs=1e-4)
    assert rescored["age_mae"] == pytest.approx(metrics["age_mae"], abs=0.01)
    assert set(metrics["by_age_band"]) == set(AGE_BAND_NAMES)


def test_model_card_states_the_shipped_figures(shipped):
    """The card's test-split figures, overall and by age band, gender and race (the groups its
    ethics section and caveats rest on), are those of metrics.json."""
    card = (shipped["dir"] / "MODEL_CARD.md").read_text()
    metrics = shipped["metrics"]
    assert f"{metrics['gender_accuracy']:.2%}" in card and f"{metrics['age_mae']:.2f}" in card
    assert f"n = {metrics['n']}, gender accuracy {metrics['gender_accuracy']:.2%}, age MAE {metrics['age_mae']:.2f} years" in card
    for group in ("by_age_band", "by_gender", "by_race"):
        for name, values in metrics[group].items():
            assert f"| {name} | {values['n']} | {values['gender_accuracy']:.2%} | {values['age_mae']:.2f} |" in card, (group, name)


def test_history_is_the_run_that_made_the_model(shipped):
    history = pd.read_csv(shipped["dir"] / "history.csv")
    assert history["epoch"].tolist() == list(range(1, len(history) + 1))
    assert len(history) <= shipped["settings"]["config"]["epochs"]


def test_model_reproduces_its_saved_test_predictions(shipped, utkface_dir):
    """Re-predicts a sample of the test split's UTKFace crops (a run over several sources names
    them UTKFace/FILE): the figures in the card come from this model."""
    predictions = shipped["predictions"]
    if "source" in predictions:
        predictions = predictions[predictions["source"] == utkface_dir.name]
        predictions = predictions.assign(file=predictions["file"].str.split("/", n=1).str[1])
    sample = predictions.sample(n=96, random_state=0)
    predictor = Predictor(shipped["dir"])
    ages, p_female = predictor.predict_arrays(predictor.prepare([utkface_dir / name for name in sample["file"]]))
    # predictions.csv rounds ages to 0.01 and probabilities to 1e-4
    assert np.abs(ages - sample["age_pred"].to_numpy()).max() < 0.02
    assert np.abs(p_female - sample["p_female"].to_numpy()).max() < 2e-4
