"""The embedding probe of tools/teacher_labels.py: a gender teacher fitted on the training split only."""
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import teacher_labels  # noqa: E402

from testkit.datasets import write_utkface_folder  # noqa: E402


def test_logistic_fit_is_the_penalised_optimum():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.5, 400) > 0).astype(float)
    w = teacher_labels.fit_logistic(x, y, l2=2.0)
    p = teacher_labels.predict_logistic(w, x)
    gradient = np.hstack([x, np.ones((400, 1))]).T @ (p - y) + np.r_[2.0 * w[:-1], 0.0]
    assert np.abs(gradient).max() < 1e-6  # Newton converged to the stationary point
    assert ((p >= 0.5) == (y == 1)).mean() > 0.85 and w[0] > 2 * abs(w[2])  # the informative feature dominates


def test_probe_answers_every_file_and_is_fitted_on_train_only(tmp_path, capsys):
    rows = write_utkface_folder(tmp_path / "data", n=60)
    files = [name for name, *_ in rows]
    genders = np.array([gender for _, _, gender, _ in rows], float)
    split = ["train"] * 40 + ["val"] * 10 + ["test"] * 10
    (tmp_path / "model").mkdir()
    pd.DataFrame({"file": files, "split": split}).to_csv(tmp_path / "model" / "split.csv", index=False)
    rng = np.random.default_rng(1)
    embeddings = np.column_stack([2 * genders - 1 + rng.normal(0, 0.3, 60), rng.normal(size=(60, 4))])
    embeddings[50:, 0] *= -1  # the test rows say the opposite: a probe fitted on them would not score 0 %
    np.savez(tmp_path / "emb.npz", files=np.array(files), embeddings=embeddings.astype(np.float32),
             framing=np.array(["hog"] * 60))
    assert teacher_labels.main(["probe", str(tmp_path / "emb.npz"), "--out", str(tmp_path / "probe.csv"),
                                "--model", str(tmp_path / "model"), "--data", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert "probe on train (out of fold): 40 faces, gender accuracy 100.00%" in out
    assert "probe on val (fitted on train): 10 faces, gender accuracy 100.00%" in out
    assert "probe on test (fitted on train): 10 faces, gender accuracy 0.00%" in out
    probe = pd.read_csv(tmp_path / "probe.csv")
    assert probe["file"].tolist() == files and probe["p_female"].between(0, 1).all()
    assert ((probe["p_female"] >= 0.5) == (genders == 1)).tolist() == [True] * 50 + [False] * 10


def test_student_views_are_our_aligned_crops_and_faceless_images_are_left_out(tmp_path, capsys):
    from PIL import Image

    from core.detect import build_detector
    from core.detect.align import align_face
    from testkit.faces import astronaut_crops, face_free, one_face_photo

    age, gender = 40, 1  # labels carried through, not scored
    photo = one_face_photo(astronaut_crops(1, seed=3)[0], side=220, seed=0)
    Image.fromarray(photo).save(tmp_path / "face.png")
    Image.fromarray(face_free(640, 480, seed=10_000)).save(tmp_path / "none.png")
    table = pd.DataFrame({"file": ["face.png", "none.png"], "path": [str(tmp_path / "face.png"), str(tmp_path / "none.png")],
                          "age": [age, 30], "gender": [gender, 0]})
    (tmp_path / "views").mkdir()
    views = teacher_labels.student_views(table, 48, tmp_path / "views")
    assert "48 px: 1 faces, 1 image(s) unreadable or without a face left out" in capsys.readouterr().out
    assert views["file"].tolist() == ["face.png"] and views["age"].tolist() == [age]
    view = np.asarray(Image.open(views["path"][0]))
    assert view.shape == (200, 200, 3)
    small = align_face(photo, build_detector().detect(photo)[0], 48)
    back = np.asarray(Image.fromarray(view).resize((48, 48), Image.BOX), float)
    assert np.abs(back - small).mean() < 4  # the 48 px crop, scaled up: nothing finer than 48 px survives
