"""Knowledge distillation from cached teacher outputs (Config.teacher / teacher_weight)."""
import json

import numpy as np
import pandas as pd
import pytest

from core.config import Config, user_options
from core.train.losses import AgeDistributionLoss, EmbeddingLoss
from core.train.pipeline import make_pipeline
from core.train.targets import build_targets, embedding_targets, load_teacher
from core.train.training import train
from testkit.datasets import write_utkface_folder

CONFIG = Config(image_size=32, width=8, epochs=2, batch_size=16, augment=False, val_fraction=0.2, test_fraction=0.2,
                teacher_weight=0.3)


def _gaussian(centre: float, sigma: float = 2.5) -> np.ndarray:
    density = np.exp(-0.5 * ((np.arange(117) - centre) / sigma) ** 2)
    return density / density.sum()


def _table(**columns) -> pd.DataFrame:
    table = pd.DataFrame(columns)
    return table.assign(age_lo=columns.get("age_lo", table["age"]), age_hi=columns.get("age_hi", table["age"]))


def test_mixed_targets_follow_the_formula_for_a_known_row(tmp_path):
    table = _table(file=["a.jpg", "b.jpg", "c.jpg", "d.jpg"], age=[30, 40, 50, 60], gender=[1, 0, 1, 0],
                   split=["train", "train", "val", "train"])
    pd.DataFrame({"file": ["a.jpg", "c.jpg", "d.jpg"], "p_female": [0.8, 0.1, 0.2],
                  "age": [36.0, 20.0, 130.0]}).to_csv(tmp_path / "teacher.csv", index=False)
    config = CONFIG.replace(teacher=str(tmp_path / "teacher.csv"))
    targets = build_targets(table, config, load_teacher(config.teacher))
    # a: train, in the CSV; b: train, not in it (labels only); c: validation (labels only); d: age clipped to 116
    assert targets.gender == pytest.approx(np.array([[0.7 + 0.3 * 0.8, 1, 1], [0, 1, 0], [1, 1, 1], [0.3 * 0.2, 1, 0]]))
    assert targets.age == pytest.approx(np.array([[30, 30, 36, 0.3, 1], [40, 40, 40, 0, 1], [50, 50, 50, 0, 1],
                                                  [60, 60, 116, 0.3, 1]]))
    assert build_targets(table, CONFIG).age[:, 3].tolist() == [0, 0, 0, 0]  # no teacher: plain labels

    images = np.zeros((4, 32, 32, 3), np.uint8)
    _, batch = next(iter(make_pipeline(images, targets, CONFIG, training=False)[0]))
    assert batch["gender"].numpy()[:, 0] == pytest.approx([0.7 * 1 + 0.3 * 0.8, 0, 1, 0.3 * 0.2])
    assert batch["age"].numpy()[0].tolist() == pytest.approx([30, 30, 36, 0.3, 1])

    predicted = np.full((1, 117), 1e-4, np.float32)
    predicted[0, 33] = 1 - 116e-4
    target = 0.7 * _gaussian(30) + 0.3 * _gaussian(36)
    expected = -(target * np.log(predicted[0])).sum() + 0.1 * abs(predicted[0] @ np.arange(117) - (0.7 * 30 + 0.3 * 36))
    loss = AgeDistributionLoss()(np.array([[30, 30, 36, 0.3, 1]], np.float32), predicted)
    assert float(loss) == pytest.approx(expected, rel=1e-4)
    plain = AgeDistributionLoss()(np.array([30], np.float32), predicted)  # w = 0 rows are the plain loss
    assert float(AgeDistributionLoss()(np.array([[30, 30, 99, 0, 1]], np.float32), predicted)) == pytest.approx(float(plain))


def test_rows_without_a_label_learn_only_the_teachers_opinion_or_nothing(tmp_path):
    """A gender-only row's age head learns the teacher's age (at weight w, share 1) when the
    teacher has it, else nothing; an age-only row's gender likewise; brackets stay brackets."""
    table = _table(file=["g.jpg", "h.jpg", "a.jpg", "b.jpg"], age=[-1, -1, 30, 5], gender=[1, 0, -1, 1],
                   age_lo=[-1, -1, 30, 4], age_hi=[-1, -1, 30, 6], split=["train"] * 4)
    teacher = pd.DataFrame({"p_female": [0.9, 0.3, 0.2], "age": [25.0, 40.0, 7.0]},
                           index=pd.Index(["g.jpg", "a.jpg", "b.jpg"], name="file"))
    targets = build_targets(table, CONFIG.replace(teacher="t.csv"), teacher)
    assert targets.age == pytest.approx(np.array([[-1, -1, 25, 1, 0.3], [-1, -1, 0, 0, 0], [30, 30, 40, 0.3, 1],
                                                  [4, 6, 7, 0.3, 1]]))
    assert targets.gender == pytest.approx(np.array([[0.7 + 0.3 * 0.9, 1, 1], [0, 1, 0], [0.3, 0.3, -1],
                                                     [0.7 + 0.3 * 0.2, 1, 1]]))


def test_a_bracket_costs_minus_the_log_of_its_mass_and_nothing_outside_the_weight():
    predicted = np.zeros((1, 117), np.float32)
    predicted[0, [3, 5, 20]] = [0.2, 0.3, 0.5]  # 0.3 of the mass inside 4-6
    loss = float(AgeDistributionLoss()(np.array([[4, 6, 0, 0, 1]], np.float32), predicted))
    expected_age = 3 * 0.2 + 5 * 0.3 + 20 * 0.5
    assert loss == pytest.approx(-np.log(0.3) + 0.1 * (expected_age - 6), rel=1e-4)
    inside = np.zeros((1, 117), np.float32)
    inside[0, [4, 6]] = 0.5
    assert float(AgeDistributionLoss()(np.array([[4, 6, 0, 0, 1]], np.float32), inside)) == pytest.approx(0, abs=1e-5)
    assert float(AgeDistributionLoss()(np.array([[-1, -1, 0, 0, 0]], np.float32), predicted)) == 0  # no age, no teacher


def test_training_with_a_teacher_uses_it_on_the_training_split_only(tmp_path, capsys):
    rows = write_utkface_folder(tmp_path / "data", n=40)
    teacher = pd.DataFrame({"file": [name for name, *_ in rows[:-5]], "p_female": 0.5, "age": 30.0})
    teacher.to_csv(tmp_path / "teacher.csv", index=False)
    config = CONFIG.replace(teacher=str(tmp_path / "teacher.csv"))
    metrics = train(tmp_path / "data", tmp_path / "run", config)
    split = pd.read_csv(tmp_path / "run" / "split.csv")
    train_files = set(split.loc[split["split"] == "train", "file"])
    distilled = len(train_files & set(teacher["file"]))
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("teacher "))
    assert line == (f"teacher {tmp_path / 'teacher.csv'}: {distilled} of {len(train_files)} training images distilled "
                    f"at weight 0.3; {len(train_files) - distilled} not in it keep their labels only")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["teacher"] == str(tmp_path / "teacher.csv")
    assert metrics["n"] == (split["split"] == "test").sum()
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert history["gender_accuracy"].between(0, 1).all() and np.isfinite(history["loss"]).all()


def test_a_missing_teacher_file_is_a_one_line_error_naming_it(tmp_path, capsys):
    from core import cli

    write_utkface_folder(tmp_path / "data", n=8)
    missing = tmp_path / "nowhere.csv"
    assert cli.main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
                     "--teacher", str(missing), "--teacher-weight", "0.4"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: teacher file {missing} does not exist (make it with tools/teacher_labels.py)"
    (tmp_path / "bad.csv").write_text("file,p_female\nx.jpg,0.5\n")
    assert cli.main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run2"),
                     "--teacher", str(tmp_path / "bad.csv")]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: teacher file {tmp_path / 'bad.csv'} lacks the column(s) age"


def test_teacher_options_are_cli_flags_and_training_form_fields():
    from core.cli.main import build_parser
    from core.cli.options import config_from_args

    args = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--teacher", "t.csv", "--teacher-weight", "0.25"])
    assert config_from_args(args).teacher == "t.csv" and config_from_args(args).teacher_weight == 0.25
    form = [option.name for option in user_options(Config)]
    assert "teacher_weight" in form and "teacher" in form
    # checked against the shared folders
    assert [o.name for o in user_options(Config) if o.metadata["path"]] == ["teacher", "embedding_teacher"]


def test_embedding_loss_is_one_minus_cosine_on_masked_rows_only():
    target = np.array([[1, 3, 4, 0], [0, 1, 0, 0], [1, 1, 0, 0]], np.float32)  # (mask, embedding)
    predicted = np.array([[6, 8, 0], [0, 1, 0], [0, 2, 0]], np.float32)
    per_row = EmbeddingLoss(reduction=None)(target, predicted).numpy()
    assert per_row == pytest.approx([0.0, 0.0, 1.0], abs=1e-6)  # same direction, masked out, orthogonal

    table = pd.DataFrame({"file": ["a.jpg", "b.jpg", "c.jpg"], "split": ["train", "val", "train"]})
    teacher = pd.DataFrame([[1.0, 2.0], [3.0, 4.0]], index=pd.Index(["a.jpg", "b.jpg"], name="file"))
    rows = embedding_targets(table, CONFIG.replace(embedding_teacher="t.npz"), teacher)
    # a: train, known; b: validation (never matched: validation loss stays the labels' loss); c: unknown
    assert rows.tolist() == [[1, 1, 2], [0, 0, 0], [0, 0, 0]]
    assert embedding_targets(table, CONFIG, None) is None


def test_training_with_an_embedding_teacher_saves_a_model_without_its_head(tmp_path, capsys):
    from core.inference.predictor import Predictor

    rows = write_utkface_folder(tmp_path / "data", n=40)
    files = [name for name, *_ in rows[:-5]]
    np.savez(tmp_path / "emb.npz", files=np.array(files), embeddings=np.random.default_rng(0).normal(size=(35, 8)))
    config = CONFIG.replace(embedding_teacher=str(tmp_path / "emb.npz"), embedding_weight=2.0)
    train(tmp_path / "data", tmp_path / "run", config)
    split = pd.read_csv(tmp_path / "run" / "split.csv")
    train_files = set(split.loc[split["split"] == "train", "file"])
    matched = len(train_files & set(files))
    assert f"{matched} of {len(train_files)} training images matched at weight 2.0" in capsys.readouterr().out
    predictor = Predictor(tmp_path / "run")  # LiteRT export: gender and age only
    image = np.full((1, 32, 32, 3), 128, np.uint8)
    p_female, ages = predictor.predict_arrays(image)
    assert p_female.shape == (1,) and ages.shape == (1,)
    from core.train.model import load_model

    model, _ = load_model(tmp_path / "run")
    assert sorted(model.output) == ["age", "gender"]


def test_a_missing_embedding_teacher_is_a_one_line_error(tmp_path, capsys):
    from core import cli

    write_utkface_folder(tmp_path / "data", n=8)
    missing = tmp_path / "nowhere.npz"
    assert cli.main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
                     "--embedding-teacher", str(missing)]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: embedding teacher {missing} does not exist (make it with tools/teacher_labels.py embed)")


def test_a_teacher_may_have_no_opinion_on_one_head(tmp_path):
    """An empty p_female (or age) in the teacher file leaves that head to the label alone."""
    table = _table(file=["a.jpg", "b.jpg"], age=[-1, 30], gender=[1, 0], split=["train", "train"])
    (tmp_path / "t.csv").write_text("file,p_female,age\na.jpg,,25\nb.jpg,0.4,\n")
    targets = build_targets(table, CONFIG.replace(teacher=str(tmp_path / "t.csv")), load_teacher(tmp_path / "t.csv"))
    assert targets.gender == pytest.approx(np.array([[1, 1, 1], [0.3 * 0.4, 1, 0]]))
    assert targets.age == pytest.approx(np.array([[-1, -1, 25, 1, 0.3], [30, 30, 30, 0, 1]]))


def test_by_confidence_a_hesitant_teacher_leaves_the_label_and_a_sure_one_mixes_in_fully():
    table = _table(file=["sure.jpg", "unsure.jpg", "half.jpg", "unlabelled.jpg"], age=[30, 1, 8, 40],
                   gender=[1, 1, 0, -1], split=["train"] * 4)
    teacher = pd.DataFrame({"p_female": [0.0, 0.5, 0.75, 0.9], "age": [30.0, 1.0, 8.0, 40.0]},
                           index=pd.Index(["sure.jpg", "unsure.jpg", "half.jpg", "unlabelled.jpg"], name="file"))
    config = CONFIG.replace(teacher="t.csv", teacher_by_confidence=True)  # w = 0.3
    targets = build_targets(table, config, teacher)
    # share = 0.3 x |2p - 1|: 0.3, 0, 0.15; an unlabelled row learns the opinion at weight 0.3 x 0.8
    assert targets.gender == pytest.approx(np.array([[0.7, 1, 1], [1, 1, 1], [0.15 * 0.75, 1, 0], [0.9, 0.24, -1]]))
    assert targets.age[:, 3] == pytest.approx([0.3] * 4)  # ages are mixed as before
    plain = build_targets(table, config.replace(teacher_by_confidence=False), teacher)
    assert plain.gender[:, 0] == pytest.approx([0.7, 0.7 + 0.15, 0.3 * 0.75, 0.9])
