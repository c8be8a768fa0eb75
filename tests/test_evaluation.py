import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from core.config import PROJECT_ROOT
from core.evaluate.metrics import inside_bracket, score
from core.inference.predictor import Predictor
from testkit.datasets import write_utkface_folder


def test_score_matches_hand_computed_values():
    predictions = pd.DataFrame({
        "file": list("abcd"),
        "age_true": [10, 30, 50, 70],
        "age_pred": [12.0, 25.0, 50.0, 61.0],
        "gender_true": ["male", "female", "female", "male"],
        "gender_pred": ["male", "male", "female", "male"],
        "p_female": [0.1, 0.4, 0.9, 0.2],
        "race": ["White", "Asian", "Asian", ""],
    })
    metrics = score(predictions)
    assert metrics["n"] == 4
    assert metrics["age_mae"] == pytest.approx((2 + 5 + 0 + 9) / 4)
    assert metrics["gender_accuracy"] == pytest.approx(0.75)
    assert metrics["age_bias"] == pytest.approx((2 - 5 + 0 - 9) / 4)
    assert metrics["gender_confusion"]["matrix"] == [[2, 0], [1, 1]]  # rows true male/female
    band = metrics["age_band_confusion"]
    assert band["labels"] == ["0-12", "13-19", "20-39", "40-59", "60+"]
    assert band["matrix"][2] == [0, 0, 1, 0, 0] and band["matrix"][4] == [0, 0, 0, 0, 1]
    assert metrics["by_race"]["Asian"] == {"n": 2, "gender_accuracy": 0.5, "age_mae": 2.5}
    assert "Others" not in metrics["by_race"]
    assert metrics["by_age_band"]["13-19"] == {"n": 0, "gender_accuracy": None, "age_mae": None}
    assert metrics["by_gender"]["male"]["age_mae"] == pytest.approx(5.5)


@pytest.mark.parametrize("flip", [True, False])
def test_cli_evaluate_json_matches_hand_computed_mae(tmp_path, tiny_model_dir, flip):
    rows = write_utkface_folder(tmp_path / "faces", n=12)
    result = subprocess.run(
        [sys.executable, "-m", "core", "evaluate", "--data", str(tmp_path / "faces"), "--model", str(tiny_model_dir),
         "--json", "--out", str(tmp_path / "out"), *([] if flip else ["--no-flip"])],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=180,
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    predictor = Predictor(tiny_model_dir, flip_tta=flip)
    names = sorted(name for name, *_ in rows)
    truth = {name: (age, gender) for name, age, gender, _ in rows}
    results = predictor.predict([tmp_path / "faces" / name for name in names])
    mae = np.mean([abs(r.age - truth[n][0]) for n, r in zip(names, results)])
    accuracy = np.mean([(r.p_female >= 0.5) == truth[n][1] for n, r in zip(names, results)])
    assert metrics["n"] == 12
    assert metrics["age_mae"] == pytest.approx(mae, abs=0.02)
    assert metrics["gender_accuracy"] == pytest.approx(accuracy)
    saved = pd.read_csv(tmp_path / "out" / "predictions.csv").set_index("file").loc[names]
    assert len(saved) == 12
    # per face, to 4 decimals: mirror averaging moves this untrained model's outputs by up to ~4e-3
    assert np.abs(saved["p_female"].to_numpy() - [r.p_female for r in results]).max() < 2e-4


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    from testkit.faces import write_photo_folder

    return write_photo_folder(tmp_path_factory.mktemp("photos"))


def test_photos_are_detected_and_unscorable_ones_listed(photo_folder, tiny_model_dir):
    import warnings

    from core.data.datasets import DatasetWarning, load_dataset
    from core.evaluate.evaluator import evaluate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        table = load_dataset(photo_folder)
    metrics, predictions = evaluate(Predictor(tiny_model_dir), table)
    assert metrics["faces"] == "detected and aligned"
    assert sorted(predictions["file"]) == ["one.jpg", "two.jpg"] and metrics["n"] == 2
    reasons = {row["file"]: row["reason"] for row in metrics["skipped"]}
    assert reasons.keys() == {"none.jpg", "unlabelled.jpg"}
    assert reasons["none.jpg"] == "no face found" and reasons["unlabelled.jpg"] == "no age and no gender"
    assert metrics["several_faces"] == [{"file": "two.jpg", "faces": 2}]


def test_photo_pipeline_scores_what_the_analyzer_predicts(photo_folder, tiny_model_dir):
    """The score of a photo is its first (most confident) face as FaceAnalyzer reads it."""
    import warnings

    from core.analysis.pipeline import FaceAnalyzer
    from core.data.datasets import DatasetWarning, load_dataset
    from core.detect import detector_for
    from core.evaluate.evaluator import evaluate

    predictor = Predictor(tiny_model_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        _, predictions = evaluate(predictor, load_dataset(photo_folder))
    analyzer = FaceAnalyzer(predictor, detector_for("photos"))  # the detector batch and the CLI use
    for row in predictions.itertuples():
        first = analyzer.analyze_photo(photo_folder / row.file)[0]
        assert row.p_female == pytest.approx(first.p_female, abs=1e-4)
        assert row.age_pred == pytest.approx(first.age, abs=0.06)  # FaceResult rounds to 0.1 year


@pytest.mark.parametrize("flag, n, faces", [([], 2, "detected and aligned"), (["--aligned"], 3, "aligned crops")])
def test_cli_evaluate_photos_warns_and_keeps_the_json_contract(photo_folder, tiny_model_dir, flag, n, faces):
    result = subprocess.run(
        [sys.executable, "-m", "core", "evaluate", "--data", str(photo_folder), "--model", str(tiny_model_dir),
         "--json", *flag], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=180)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert metrics["n"] == n and metrics["faces"] == faces
    assert {"gender_accuracy", "age_mae"} <= metrics.keys()
    assert "unlabelled.jpg" in result.stderr and "not scored" in result.stderr
    assert ("none.jpg: no face found" in result.stderr) == (not flag)


def test_cli_detect_flag_sends_utkface_crops_through_the_detector(tmp_path, tiny_model_dir):
    """Synthetic stripes hold no face: with --detect every image is skipped, and the CLI says so."""
    write_utkface_folder(tmp_path / "faces", n=3)
    result = subprocess.run(
        [sys.executable, "-m", "core", "evaluate", "--data", str(tmp_path / "faces"), "--model", str(tiny_model_dir),
         "--detect"], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=180)
    assert result.returncode == 1
    assert "error: no image could be scored: 3 x no face found" in result.stderr.strip().splitlines()[-1]


def test_brackets_groups_and_recall_are_scored_by_hand():
    from core.evaluate.metrics import predictions_table, score

    table = pd.DataFrame({"file": list("abcdef"), "age": [5, 5, 30, -1, 40, 70], "gender": [0, 1, 1, 1, -1, 0],
                          "race": -1, "age_lo": [4, 4, 30, -1, 40, 60], "age_hi": [6, 6, 30, -1, 40, 100],
                          "album": ["x", "x", "y", "y", "y", "y"]})
    predictions = predictions_table(table, np.array([6.9, 4.0, 33.0, 20.0, 40.0, 59.0]),
                                    np.array([0.2, 0.4, 0.9, 0.8, 0.5, 0.1], np.float32))
    metrics = score(predictions)
    # brackets a, b, f: 6.9 is in [4, 7); 4.0 in; 59.0 is 1 year below [60, 101)
    assert metrics["age_in_bracket"] == pytest.approx(2 / 3) and metrics["age_bracket_distance"] == pytest.approx(1 / 3)
    assert metrics["by_bracket"]["4-6"]["age_in_bracket"] == 1.0 and metrics["by_bracket"]["60-100"]["n"] == 1
    assert metrics["age_mae"] == pytest.approx(1.5)  # exact ages only: c (3 years off) and e (0)
    assert metrics["gender_accuracy"] == pytest.approx(4 / 5)  # e has no gender; b (a girl) read as a boy
    assert metrics["gender_recall"] == {"female": pytest.approx(2 / 3), "male": 1.0}
    assert metrics["by_album"]["x"]["n"] == 2 and metrics["by_album"]["x"]["gender_accuracy"] == 0.5
    assert metrics["by_album"]["y"]["age_in_bracket"] == 0.0


def test_a_set_scored_in_chunks_keeps_its_groups_and_brackets(tmp_path, tiny_model_dir):
    """Breakdown columns are those of the whole set, not of whichever chunk is being scored."""
    from core.data.datasets import load_folder_csv
    from core.evaluate.evaluator import evaluate

    write_utkface_folder(tmp_path, n=8)
    names = sorted(p.name for p in tmp_path.glob("*.jpg"))
    rows = [f"{name},30,,,1,{'one' if i < 4 else 'two'}" if i % 3 else f"{name},,20,29,0,{'one' if i < 4 else 'two'}"
            for i, name in enumerate(names)]
    (tmp_path / "labels.csv").write_text("file,age,age_lo,age_hi,gender,album\n" + "\n".join(rows) + "\n")
    table = load_folder_csv(tmp_path)
    metrics, predictions = evaluate(Predictor(tiny_model_dir), table, chunk=2, detect=False)
    assert predictions["album"].tolist() == ["one"] * 4 + ["two"] * 4
    assert metrics["by_album"]["one"]["n"] == 4 and metrics["by_bracket"]["20-29"]["n"] == 3


def test_a_bracket_holds_its_last_year_to_its_end_for_arrays_as_for_tables():
    ages = np.array([3.99, 4.0, 6.99, 7.0])
    assert inside_bracket(ages, 4, 6).tolist() == [False, True, True, False]
