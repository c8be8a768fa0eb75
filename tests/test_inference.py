"""The LiteRT predictor: it agrees with the Keras model, predicting never loads TensorFlow, and
every entry point (CLI predict, batch, the Single photo page, live video) gives the same faces,
ages and genders for the same photo, because they all run `core.analysis.pipeline.FaceAnalyzer`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.analysis.pipeline import FaceAnalyzer
from core.cli import main
from core.config import PROJECT_ROOT
from core.detect import detector_for
from core.detect.blazeface import BlazeFaceDetector
from core.imaging.files import load_image
from core.inference.predictor import Predictor
from core.train.model import KerasNetwork
from testkit.faces import astronaut_crops, background, jpeg_bytes, paste

# Measured on 512 UTKFace crops with the shipped model: max |age difference| 1.9e-5 years,
# max |p_female difference| 7.7e-7, no gender flips. The tolerances leave room for other CPUs.
AGE_TOLERANCE, P_TOLERANCE = 1e-3, 1e-5


def test_litert_export_agrees_with_the_keras_model(default_model_dir, utkface_dir):
    paths = sorted(utkface_dir.glob("*.jpg"))[::300][:64]
    lite, keras = Predictor(default_model_dir), Predictor(default_model_dir, network=KerasNetwork(default_model_dir))
    batch = lite.prepare(paths)
    ages, p_female = lite.predict_arrays(batch)
    keras_ages, keras_p = keras.predict_arrays(batch)
    np.testing.assert_allclose(ages, keras_ages, atol=AGE_TOLERANCE)
    np.testing.assert_allclose(p_female, keras_p, atol=P_TOLERANCE)
    assert ages.std() > 5 and p_female.min() < 0.2 < 0.8 < p_female.max()  # real, varied answers


def test_a_freshly_saved_model_gets_a_matching_export(tiny_model_dir):
    crops = np.random.default_rng(0).integers(0, 255, (6, 40, 40, 3), dtype=np.uint8)
    lite, keras = Predictor(tiny_model_dir), Predictor(tiny_model_dir, network=KerasNetwork(tiny_model_dir))
    ages, p_female = lite.predict_arrays(lite.prepare(list(crops)))
    keras_ages, keras_p = keras.predict_arrays(keras.prepare(list(crops)))
    np.testing.assert_allclose(ages, keras_ages, atol=AGE_TOLERANCE)
    np.testing.assert_allclose(p_female, keras_p, atol=P_TOLERANCE)


def test_predicting_never_imports_tensorflow(tiny_model_dir, tmp_path):
    """The CLI prediction path and the pipeline load LiteRT only (and print nothing on stderr)."""
    photo = tmp_path / "noise.jpg"
    photo.write_bytes(jpeg_bytes(background(320, 240, seed=1)))
    code = ("import sys; sys.argv = ['core', 'predict', sys.argv[1], '--model', sys.argv[2]]\n"
            "from core.cli import main\ncode = main()\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'\n"
            "sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code, str(photo), str(tiny_model_dir)], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{photo}: no face"
    assert result.stderr == ""  # no TensorFlow, CUDA, absl or XNNPACK lines


@pytest.fixture(scope="module")
def two_people(tmp_path_factory) -> Path:
    """A 640x480 JPEG with two real faces pasted in it (astronaut variants: no dataset needed)."""
    photo = background(640, 480, seed=8)
    for crop, centre in zip(astronaut_crops(2, BlazeFaceDetector(), seed=3), [(170, 240), (470, 230)]):
        paste(photo, crop, centre, 220)
    file = tmp_path_factory.mktemp("same") / "two.jpg"
    file.write_bytes(jpeg_bytes(photo))
    return file


def test_every_entry_point_gives_the_same_faces(two_people, default_model_dir, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from core.video.live import FrameProcessor, LiveSettings

    analyzer = FaceAnalyzer(Predictor(default_model_dir), detector_for("photos"))  # what CLI and pages use
    results = analyzer.analyze_photo(two_people)
    expected = [(f.number, f.x, f.y, f.w, f.h, f.gender, f.age_years) for f in results]
    assert len(expected) == 2 and all(f.age_low is not None and f.quality is not None for f in results)

    cli = subprocess.run([sys.executable, "-m", "core", "predict", str(two_people), "--model", str(default_model_dir),
                          "--json"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert [json.loads(line) for line in cli.stdout.splitlines()] == [f.row(str(two_people)) for f in results]

    assert main(["batch", str(two_people.parent), "--out", str(tmp_path / "rows.csv"), "--model", str(default_model_dir)]) == 0
    rows = pd.read_csv(tmp_path / "rows.csv")
    assert [(r.face, r.x, r.y, r.w, r.h, r.gender, int(np.floor(r.age + 0.5))) for r in rows.itertuples()] == expected
    assert [(r.age_low, r.age_high, r.quality, r.sharpness) for r in rows.itertuples()] \
        == [(f.age_low, f.age_high, f.quality.grade, f.quality.sharpness) for f in results]

    monkeypatch.setenv("AGE_GENDER_MODEL_DIR", str(default_model_dir))
    page = AppTest.from_file(str(PROJECT_ROOT / "dashboard" / "app.py"), default_timeout=90)
    page.run()
    page.switch_page("views/photo.py").run()
    page.get("file_uploader")[0].set_value(("two.jpg", two_people.read_bytes(), "image/jpeg")).run()
    assert not page.exception, [e.value for e in page.exception]
    table = page.dataframe[0].value
    assert [(r.face, r.gender, r.age) for r in table.itertuples()] == [(n, g, a) for n, _, _, _, _, g, a in expected]

    # A video frame is a decoded picture. The live page runs the faster BlazeFace (DETECTOR_FOR);
    # given the photos' detector and threshold the live pipeline gives the very same answers.
    frame = load_image(two_people)
    live = FrameProcessor(analyzer, LiveSettings(min_score=analyzer.detector.min_score))
    _, states = live.process(frame)
    assert sorted((s.result.x, s.result.y, s.result.w, s.result.h, s.result.gender, s.result.age_years) for s in states) \
        == sorted(e[1:] for e in expected)
    assert sorted(s.result.label() for s in states) == sorted(f.label() for f in results)
