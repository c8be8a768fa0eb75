"""Every dashboard page run by Streamlit's AppTest against a real run folder.

The run folder is the shipped model once models/default holds all its artifacts; until then a
tiny model trained here on a few dozen UTKFace images (so these tests skip without the dataset).
"""
from __future__ import annotations

import io
import json
import os
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CONFIG
from streamlit.testing.v1 import AppTest

from core.config import DEFAULT_MODEL_DIR, PROJECT_ROOT
from dashboard import access, uploads
from testkit.faces import ASTRONAUT

APP = PROJECT_ROOT / "dashboard" / "app.py"
RUN_FILES = ("model.keras", "model.json", "history.csv", "labels.csv", "split.csv", "metrics.json", "predictions.csv")


@pytest.fixture(scope="session")
def run_dir(request, tmp_path_factory) -> Path:
    """A complete run folder: the shipped model, or a tiny one trained on 80 UTKFace images."""
    if all((DEFAULT_MODEL_DIR / name).is_file() for name in RUN_FILES):
        return DEFAULT_MODEL_DIR
    utkface = request.getfixturevalue("utkface_dir")
    from core.data.datasets import DatasetWarning, load_dataset
    from core.train.training import train

    out = tmp_path_factory.mktemp("run") / "tiny"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)  # the five malformed UTKFace names
        table = load_dataset(utkface)
    train(table.sample(n=80, random_state=0), out, TINY_CONFIG.replace(epochs=2))
    return out


@pytest.fixture
def app(run_dir, tmp_path, tmp_path_factory, monkeypatch) -> AppTest:
    """The app with the test's temporary folders shared (besides the project and the datasets)."""
    monkeypatch.setenv("AGE_GENDER_MODEL_DIR", str(run_dir))
    monkeypatch.setenv("AGE_GENDER_RUNS_DIR", str(tmp_path / "runs"))
    shared = [*access.default_roots(), tmp_path_factory.getbasetemp()]
    monkeypatch.setenv(access.ROOTS_ENV, os.pathsep.join(map(str, shared)))
    return AppTest.from_file(str(APP), default_timeout=90)


def open_page(app: AppTest, page: str, dataset: tuple[str, Path] | None = None) -> AppTest:
    """Run the app on a page, with a (format, path) dataset chosen in the sidebar.

    The sidebar is set through session state: AppTest drops the entry script's elements from
    its tree after a page switch (a real browser shows them, see test_dashboard_browser)."""
    if dataset:
        app.session_state["data_kind"] = dataset[0]
        app.session_state[f"data_path_{dataset[0]}"] = str(dataset[1])
    app.run()
    app.switch_page(f"views/{page}.py").run()
    return ok(app)


def refused() -> str:
    """The refusal a path outside the shared folders gets, naming the test's shared folders."""
    return access.refused(access.server_roots(os.environ[access.ROOTS_ENV], None))


def ok(app: AppTest) -> AppTest:
    """The app ran without failing: no exception box, nor our own notice of one (whose traceback
    is in the captured log, `components.page_failed`)."""
    assert not app.exception, [e.value for e in app.exception]
    failed = [e.value for e in app.error if e.value.startswith("Something went wrong on this page")]
    assert not failed, failed
    return app


def figures(app: AppTest) -> dict[str, dict]:
    """The page's plotly figures by title."""
    specs = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
    return {spec["layout"]["title"]["text"]: spec for spec in specs}


def metric(app: AppTest, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def labelled(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def captions(app: AppTest) -> str:
    return "\n".join(c.value for c in app.caption)


# -- demographics --------------------------------------------------------------------------------

def test_demographics_shows_the_training_labels_by_default(app, run_dir):
    labels = pd.read_csv(run_dir / "labels.csv")
    open_page(app, "demographics")
    assert "training labels" in captions(app)
    assert metric(app, "Faces shown") == f"{len(labels):,}"
    assert metric(app, "Female") == f"{labels['gender'].mean():.1%}"
    charts = figures(app)
    assert set(charts) == {"Age by gender", "Gender", "Race", "Age-gender pyramid", "Age band x race"}
    assert sum(len(_values(trace["x"])) for trace in charts["Age by gender"]["data"]) == (labels["age"] >= 0).sum()
    assert sum(_values(charts["Gender"]["data"][0]["values"])) == len(labels)


def test_demographics_filters_update_every_chart(app, run_dir):
    labels = pd.read_csv(run_dir / "labels.csv")
    open_page(app, "demographics")
    labelled(app.multiselect, "Gender").set_value(["female"])
    labelled(app.slider, "Age range").set_value((20, 39))
    ok(app.run())
    chosen = labels[(labels["gender"] == 1) & labels["age"].between(20, 39)]
    assert metric(app, "Faces shown") == f"{len(chosen):,}"
    charts = figures(app)
    assert [t["name"] for t in charts["Age by gender"]["data"]] == ["female"]
    assert sum(_values(charts["Race"]["data"][0]["values"])) == len(chosen)
    (female,) = charts["Age-gender pyramid"]["data"]  # the legend names only the gender shown
    assert female["name"] == "female" and sum(_values(female["x"])) == len(chosen)
    heatmap = charts["Age band x race"]["data"][0]
    assert np.sum(_values(heatmap["z"])) == len(chosen) and list(heatmap["y"]) == ["20-39"]


def test_demographics_race_filter_keeps_colours_and_heatmap_columns(app, run_dir):
    open_page(app, "demographics")
    before = _slice_colours(figures(app)["Race"])
    races = labelled(app.multiselect, "Race")
    chosen = [race for race in races.value if race != "White"]
    races.set_value(chosen)
    ok(app.run())
    charts = figures(app)
    after = _slice_colours(charts["Race"])
    assert set(after) == set(chosen) and all(after[race] == before[race] for race in chosen)  # Black stays Black
    assert list(charts["Age band x race"]["data"][0]["x"]) == chosen


def _slice_colours(spec: dict) -> dict[str, str]:
    pie = spec["data"][0]
    return dict(zip(pie["labels"], pie["marker"]["colors"]))


def test_demographics_gender_filter_has_room_for_both_labels(app, run_dir):
    open_page(app, "demographics")
    column = next(c for c in app.columns if any(m.label == "Gender" for m in c.multiselect))
    assert column.weight >= 0.28  # at 0.2 of a wide page the chips read "fema…"


def _values(array) -> list:
    """Plotly may serialise numeric arrays as {"dtype", "bdata"}; both forms as a list."""
    if isinstance(array, dict):
        import base64

        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def test_demographics_on_the_utkface_folder_shows_faces(app, utkface_dir):
    open_page(app, "demographics")
    app.selectbox(key="data_kind").set_value("utkface")  # the sidebar, as a user picks a dataset
    ok(app.run())
    app.text_input(key="data_path_utkface").set_value(str(utkface_dir))
    ok(app.run())
    assert "UTKFace folder" in captions(app) and "5 unusable rows skipped" in captions(app)
    assert metric(app, "Faces shown") == f"{len(list(utkface_dir.glob('*.jpg'))) - 5:,}"
    assert len(app.image) == 18


def test_demographics_reads_a_pixel_csv_and_shows_its_faces(app, tmp_path):
    rng = np.random.default_rng(0)
    csv = tmp_path / "faces.csv"
    pd.DataFrame({"age": [5, 30, 30, 70], "ethnicity": [0, 1, 2, 3], "gender": [0, 1, 1, 0],
                  "img_name": [f"p{i}.jpg" for i in range(4)],
                  "pixels": [" ".join(map(str, rng.integers(0, 256, 48 * 48))) for _ in range(4)]}).to_csv(csv, index=False)
    open_page(app, "demographics", ("pixels-csv", csv))
    assert metric(app, "Faces shown") == "4" and metric(app, "Female") == "50.0%"
    assert len(app.image) == 4


def test_demographics_of_a_source_without_ages_or_genders_counts_only_what_is_known(app, tmp_path):
    """Gender-only portraits (age -1) and a row without a gender (-1): not read as age -1 or as
    women (GENDERS[-1] is 'female'), and left out of the age charts with a word saying so."""
    from PIL import Image

    from testkit.datasets import synthetic_face

    folder = tmp_path / "mixed"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(synthetic_face(30, i % 2, seed=i)).save(folder / f"p{i}.png")
    (folder / "labels.csv").write_text("file,age,gender\np0.png,30,male\np1.png,50,female\np2.png,,male\n"
                                       "p3.png,,male\np4.png,40,\n")
    open_page(app, "demographics", ("folder-csv", folder))
    assert metric(app, "Faces shown") == "5" and metric(app, "Female") == "25.0%"  # 1 of the 4 with a gender
    assert metric(app, "Median age") == "40" and metric(app, "Age range") == "30-50"
    assert app.slider[0].value == (30, 50)
    assert "unknown" in app.multiselect[0].options
    assert "2 of these faces have no age label" in " ".join(c.value for c in app.caption)


def test_unreadable_images_of_a_dataset_are_named_not_a_crash(app, tmp_path):
    """A labels.csv listing an empty .jpg and a text file raised UnidentifiedImageError in the
    sample gallery (Streamlit's error box, the rest of the page gone)."""
    from PIL import Image

    from testkit.datasets import synthetic_face

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(synthetic_face(30 + i, i % 2, size=96, seed=i)).save(folder / f"face{i}.jpg")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("not a picture")
    files = [f"face{i}.jpg" for i in range(3)] + ["empty.jpg", "text.jpg"]
    pd.DataFrame({"file": files, "age": [30, 31, 32, 40, 50], "gender": [0, 1, 0, 1, 0]}).to_csv(
        folder / "labels.csv", index=False)
    open_page(app, "demographics", ("folder-csv", folder))
    assert metric(app, "Faces shown") == "5" and len(app.image) == 3
    unreadable = sorted(c.value for c in app.caption if "cannot show this file" in c.value)
    assert len(unreadable) == 2 and "empty file" in unreadable[0] + unreadable[1]


def test_a_dataset_that_cannot_load_falls_back_with_the_reason(app, tmp_path, run_dir):
    open_page(app, "demographics", ("utkface", tmp_path / "missing"))
    assert any(access.REFUSED in e.value for e in app.error)
    assert metric(app, "Faces shown") == f"{len(pd.read_csv(run_dir / 'labels.csv')):,}"


# -- server paths (dashboard/access.py) -----------------------------------------------------------

OUTSIDE = ("/etc/shadow", "/etc/no-such-file.csv", "/usr/share")  # forbidden, missing, readable: all outside


def test_datasets_outside_the_shared_roots_are_refused_alike(app):
    from dashboard.state import DataSource

    for kind, path in [("pixels-csv", path) for path in OUTSIDE] + [("utkface", "/usr/share")]:
        open_page(app, "demographics", (kind, path))
        assert [e.value for e in app.error] == [f"Cannot load {DataSource(kind, path).describe()}: {refused()}"]
        assert "the training labels of model" in captions(app)  # what the page falls back to


def test_a_model_folder_outside_the_shared_roots_is_refused(app, run_dir):
    from dashboard.state import display_name

    for path in OUTSIDE:
        app.session_state["model_choice"] = "Other folder..."
        app.session_state["model_path"] = path
        ok(app.run())  # the home page, with the sidebar
        assert [e.value for e in app.error] == [f"Model folder {refused()}; showing `{display_name(run_dir)}`."]
        assert app.session_state["model_dir"] == str(run_dir)


def test_a_run_folder_that_disappears_is_named_not_silently_replaced(app, run_dir, tmp_path):
    import shutil

    from dashboard.state import display_name

    run = tmp_path / "runs" / "short-lived"
    run.mkdir(parents=True)
    shutil.copy(run_dir / "history.csv", run / "history.csv")
    ok(app.run())
    name = next(n for n in app.selectbox(key="model_choice").options if n.endswith("short-lived"))
    app.selectbox(key="model_choice").set_value(name)
    ok(app.run())
    assert app.session_state["model_dir"] == str(run) and not app.warning
    shutil.rmtree(run)
    ok(app.run())
    assert [w.value for w in app.warning] == [
        f"Run folder `{name}` is no longer there (deleted or moved): showing `{display_name(run_dir)}`."]
    assert app.session_state["model_dir"] == str(run_dir)


def test_batch_folders_outside_the_shared_roots_are_refused_alike(app, tmp_path):
    (tmp_path / "link").symlink_to("/usr/share")
    open_page(app, "batch")
    app.radio(key="batch_mode").set_value("A folder on the server")
    ok(app.run())
    for folder in (*OUTSIDE, tmp_path / "link", tmp_path / "missing", tmp_path / ".." / ".." / ".." / ".." / "etc"):
        app.text_input(key="batch_folder").set_value(str(folder))
        ok(app.run())
        assert [e.value for e in app.error] == [f"Folder {refused()}."]
        assert app.button(key="batch_run").disabled


def test_without_shared_roots_only_uploads_reach_the_server(app, monkeypatch):
    monkeypatch.setenv(access.ROOTS_ENV, "")
    ok(app.run())
    assert app.selectbox(key="data_kind").options == ["Training labels of the model"]
    assert "Other folder..." not in app.selectbox(key="model_choice").options
    app.switch_page("views/batch.py").run()
    assert app.radio(key="batch_mode").options == ["Upload images or zip files"]
    assert not any("folder on the server" in i.value for i in ok(app).info)


def test_without_shared_roots_pages_that_need_them_say_so(app, monkeypatch):
    """Served to others with no shared folder, Training's form and a fresh evaluation were dead ends."""
    monkeypatch.setenv(access.ROOTS_ENV, "")
    ok(app.run())
    app.switch_page("views/training.py").run()
    assert any(i.value.startswith("This server shares no folders with visitors, so training") for i in ok(app).info)
    assert "Start training" not in [b.label for b in app.button]
    app.switch_page("views/evaluation.py").run()
    assert not any(r.key == "eval_mode" for r in ok(app).radio)
    assert "so a fresh evaluation (it reads a dataset's images on the server) cannot run here" in captions(app)
    assert metric(app, "Faces")  # the saved results are still shown


# -- training --------------------------------------------------------------------------------------

def test_training_shows_the_curves_of_the_selected_run(app, run_dir):
    before = len(pd.read_csv(run_dir / "history.csv"))
    open_page(app, "training")
    history = pd.read_csv(run_dir / "history.csv")  # re-read: the run may still be training
    charts = figures(app)
    assert set(charts) == {"Loss", "Gender accuracy", "Age MAE (years)"}
    lines = {trace["line"]["dash"]: _values(trace["y"]) for trace in charts["Age MAE (years)"]["data"]}
    epochs = len(lines["solid"])
    assert before <= epochs <= len(history)
    np.testing.assert_allclose(lines["solid"], history["age_mae"][:epochs])
    np.testing.assert_allclose(lines["dash"], history["val_age_mae"][:epochs])
    assert app.dataframe[0].value["epochs"].tolist() == [epochs]


def _launch(app: AppTest, data: Path | list, name: str, weights: str = "", **settings) -> None:
    app.text_input(key="train_name").set_value(name)
    app.text_area(key="train_data").set_value("\n".join(map(str, data)) if isinstance(data, list) else str(data))
    app.text_input(key="train_weights").set_value(weights)
    for key, value in settings.items():
        (app.selectbox if key in ("train_architecture", "train_lr_schedule") else app.number_input)(key=key).set_value(value)
    app.button[[b.label for b in app.button].index("Start training")].click()
    ok(app.run())


def _wait_for(job, seconds: float) -> None:
    job.process.wait(timeout=seconds)


def test_a_failing_run_shows_its_error(app, tmp_path):
    from dashboard import state

    empty = tmp_path / "empty"
    empty.mkdir()
    open_page(app, "training")
    _launch(app, empty, "broken")
    job = state.training_jobs().snapshot()[str(tmp_path / "runs" / "broken")]
    _wait_for(job, 60)
    ok(app.run())
    assert job.status == "failed"
    assert any("no usable labelled images" in e.value for e in app.error)


def _dataset(folder: Path) -> Path:
    """A small UTKFace-named dataset of synthetic faces, for what the Training page does with a
    dataset (launch, refuse, stop, resume) rather than what a model learns from it."""
    from testkit.datasets import write_utkface_folder

    write_utkface_folder(folder, n=60)
    return folder


def test_a_run_launched_from_the_page_trains_in_the_background(app, tmp_path):
    from dashboard import state

    data = _dataset(tmp_path / "faces")
    open_page(app, "training")
    started = time.monotonic()
    _launch(app, data, "tiny", train_epochs=50, train_limit=60, train_image_size=32, train_width=8)
    assert time.monotonic() - started < 20, "launching must not wait for training"
    run = str(tmp_path / "runs" / "tiny")
    job = state.training_jobs().snapshot()[run]
    assert job.status == "running"
    assert any(m.value.startswith(f"**{run}**: running") for m in app.markdown)
    assert run in app.multiselect(key="compare_runs").value
    while job.epochs_done() < 1:  # the curves follow history.csv while the run goes on
        assert job.status == "running", job.log_lines()[-5:]
        assert time.monotonic() - started < 150, "no epoch after 150 s"
        time.sleep(1)
    ok(app.run())
    assert any(trace["legendgroup"] == f"{run}, validation" for trace in figures(app)["Loss"]["data"])
    app.button(key=f"stop_{run}").click()
    ok(app.run())
    _wait_for(job, 120)
    ok(app.run())
    assert job.status == "stopped", job.log_lines()[-5:]
    assert any(m.value.startswith(f"**{run}**: stopped") for m in app.markdown)
    assert (Path(run) / "metrics.json").is_file()  # a stopped run still scores its best model
    epochs = job.epochs_done()
    app.button(key=f"resume_{run}").click()  # continues the same folder from its last epoch
    ok(app.run())
    resumed = state.training_jobs().snapshot()[run]
    assert resumed is not job and resumed.active and "--resume" in resumed.process.args
    while resumed.epochs_done() <= epochs:
        assert resumed.active, resumed.log_lines()[-5:]
        assert time.monotonic() - started < 400, "no epoch after resuming"
        time.sleep(1)
    resumed.stop()
    _wait_for(resumed, 120)
    assert resumed.status == "stopped" and len(pd.read_csv(Path(run) / "history.csv")) == resumed.epochs_done()


def test_a_teacher_file_outside_the_shared_roots_starts_no_training(app, tmp_path):
    """The Training form's path fields (Config fields declared `path=True`, here `teacher`) are
    checked like the dataset: outside the shared folders, or a folder, nothing starts."""
    data = _dataset(tmp_path / "faces")
    open_page(app, "training")
    for path in (*OUTSIDE, tmp_path):
        app.text_input(key="train_teacher").set_value(str(path))
        _launch(app, data, "teacher-outside")
        assert [e.value for e in app.error] == [f"Teacher answers file (CSV) {refused()}."]
    assert not (tmp_path / "runs" / "teacher-outside").exists()
    from dashboard import state

    teacher, empty = tmp_path / "teacher.csv", tmp_path / "empty"
    teacher.write_text("file,p_female,age\n")
    empty.mkdir()
    app.text_input(key="train_teacher").set_value(str(teacher))
    _launch(app, empty, "teacher-inside")  # an empty dataset: the run starts and fails at once
    job = state.training_jobs().snapshot()[str(tmp_path / "runs" / "teacher-inside")]
    assert job.process.args[job.process.args.index("--teacher") + 1] == str(teacher.resolve())
    _wait_for(job, 60)


def test_several_datasets_with_their_shares_go_to_one_run(app, tmp_path):
    """Two datasets and their shares become two --data and two --weight flags of one run; a
    share count that does not match is refused before anything starts."""
    from dashboard import state

    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    open_page(app, "training")
    _launch(app, [first, second], "two", weights="3 1")
    job = state.training_jobs().snapshot()[str(tmp_path / "runs" / "two")]
    args = job.process.args
    assert [args[i + 1] for i, a in enumerate(args) if a == "--data"] == [str(first.resolve()), str(second.resolve())]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--weight"] == ["3", "1"]
    _wait_for(job, 60)  # empty folders: the run fails at once
    _launch(app, [first, second], "three", weights="3")
    assert "Not started: 1 shares for 2 datasets: give one per dataset, or none." in [e.value for e in app.error]
    assert not (tmp_path / "runs" / "three").exists()


def test_a_dataset_outside_the_shared_roots_starts_no_training(app, tmp_path):
    open_page(app, "training")
    for path in OUTSIDE:
        _launch(app, path, "outside")
        assert [e.value for e in app.error] == [f"Dataset {refused()}."]
    assert not (tmp_path / "runs" / "outside").exists()


SLEEPS = "import time; time.sleep(60)"
IGNORES_CTRL_C = ("import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print('ready', flush=True); "
                  "time.sleep(60)")


@pytest.fixture
def fake_job(tmp_path, monkeypatch):
    """Start a 'training run' through the server's registry, with a small script as the child
    process; every one is ended and forgotten after the test."""
    import sys

    from dashboard import jobs, state

    started = []

    def start(name: str, owner: str, script: str = SLEEPS):
        monkeypatch.setattr(jobs.TrainSettings, "command", lambda self, out: [sys.executable, "-c", script])
        run_dir = tmp_path / "runs" / name
        job = state.training_jobs().start(str(run_dir), run_dir, jobs.TrainSettings(data="unused"), owner)
        started.append((str(run_dir), job))
        return job

    yield start
    for name, job in started:
        job.process.kill()
        job.process.wait()
        state.training_jobs().dismiss(name, job.owner)


def test_runs_of_other_sessions_show_no_panel_log_stop_or_curves(app, fake_job, run_dir):
    import shutil

    job = fake_job("theirs", owner="another session")
    shutil.copy(run_dir / "history.csv", job.run_dir)
    (job.run_dir / "train.log").write_text("loading /their/private/dataset\n")
    name = str(job.run_dir)
    ok(app.run())
    assert name not in app.selectbox(key="model_choice").options  # nor its labels, through the sidebar
    open_page(app, "training")
    assert not any(name in m.value for m in app.markdown)
    assert not any(b.key == f"stop_{name}" for b in app.button)
    assert not any("private" in c.value for c in app.code)
    assert name not in app.multiselect(key="compare_runs").options
    assert "1 run(s) training for other sessions" in captions(app)
    job.process.kill()
    job.process.wait()
    ok(app.run())
    assert name in app.multiselect(key="compare_runs").options  # ended: its curves are anyone's to compare
    assert not any(name in m.value for m in app.markdown) and not app.code


def test_a_typed_path_into_another_sessions_running_run_is_refused(app, fake_job, run_dir):
    """The run picker hid it, but typing runs/<name> as a model or dataset folder showed its labels."""
    import shutil

    job = fake_job("theirs", owner="another session")
    shutil.copy(run_dir / "labels.csv", job.run_dir / "labels.csv")
    app.session_state["model_choice"] = "Other folder..."
    app.session_state["model_path"] = str(job.run_dir)
    app.session_state["data_kind"] = "folder-csv"
    app.session_state["data_path_folder-csv"] = str(job.run_dir)
    ok(app.run())  # the home page (Demographics), with the sidebar
    from dashboard.state import display_name

    assert {e.value for e in app.error} == {f"Model folder {refused()}; showing `{display_name(run_dir)}`.",
                                            f"Cannot load Image folder + labels CSV `{job.run_dir}`: {refused()}"}
    assert app.session_state["model_dir"] == str(run_dir) and "the training labels of model" in captions(app)
    job.process.kill()
    job.process.wait()
    ok(app.run())  # ended: anyone's to read (its labels name images it does not hold: that is another error)
    assert not any(refused() in e.value for e in app.error)
    assert app.session_state["model_dir"] == str(job.run_dir.resolve())


def test_the_training_form_refuses_a_dataset_inside_another_sessions_running_run(app, fake_job):
    job = fake_job("theirs", owner="another session")
    open_page(app, "training")
    _launch(app, job.run_dir, "peek")
    assert [e.value for e in app.error] == [f"Dataset {refused()}."]


def test_the_training_cap_is_said_when_reached(app, fake_job, tmp_path):
    fake_job("theirs", owner="another session")
    data = _dataset(tmp_path / "faces")
    open_page(app, "training")
    _launch(app, data, "mine")
    (error,) = app.error
    assert "1 run(s) already training on this server" in error.value and "AGE_GENDER_MAX_TRAININGS" in error.value
    assert not (tmp_path / "runs" / "mine").exists()


def test_the_cap_comes_from_the_environment(fake_job, monkeypatch):
    from dashboard import jobs

    monkeypatch.setenv(jobs.MAX_TRAININGS_ENV, "2")
    fake_job("one", owner="a")
    fake_job("two", owner="b")
    with pytest.raises(jobs.ServerBusy, match="2 run"):
        fake_job("three", owner="c")


def test_an_ended_run_can_be_dismissed(app, fake_job):
    from dashboard import state

    open_page(app, "training")
    job = fake_job("mine", owner=app.session_state["session_id"], script="pass")
    job.process.wait()
    ok(app.run())
    name = str(job.run_dir)
    assert any(m.value.startswith(f"**{name}**: finished") for m in app.markdown)
    app.button(key=f"dismiss_{name}").click()
    ok(app.run())
    assert not any(m.value.startswith(f"**{name}**") for m in app.markdown)
    assert name not in state.training_jobs().snapshot()


def test_stop_says_what_it_waits_for_while_it_waits(app, fake_job):
    open_page(app, "training")
    job = fake_job("mine", owner=app.session_state["session_id"], script=IGNORES_CTRL_C)
    while job.log_lines() != ["ready"]:  # Ctrl-C is ignored from now on, like training finishing its step
        time.sleep(0.05)
    ok(app.run())
    name = str(job.run_dir)
    stop = app.button(key=f"stop_{name}")
    assert "Stops now" not in stop.proto.help and "current step" in stop.proto.help
    stop.click()
    ok(app.run())
    assert job.status == "stopping"
    assert any(m.value.startswith(f"**{name}**: stopping") for m in app.markdown)
    (status,) = app.status
    assert status.state == "running" and "scored on the test split" in status.label
    assert not any(b.key in (f"stop_{name}", f"dismiss_{name}") for b in app.button)


# -- evaluation ------------------------------------------------------------------------------------

def test_evaluation_shows_the_saved_metrics(app, run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    open_page(app, "evaluation")
    assert metric(app, "Faces") == f"{metrics['n']:,}"
    assert metric(app, "Age MAE (years)") == f"{metrics['age_mae']:.2f}"
    assert metric(app, "Gender accuracy") == f"{metrics['gender_accuracy']:.1%}"
    charts = figures(app)
    interval = metrics["age_interval"]
    coverage_title = f"80% age intervals: {interval['coverage']:.1%} covered, median width {interval['median_width']:.0f} years"
    reliability_title = f"Gender confidence reliability (ECE {metrics['gender_reliability']['ece']:.1%})"
    assert {"Gender confusion", "Age-band confusion", "Age error (predicted - true)", "Predicted vs true age",
            "Age MAE by age band", "Gender accuracy by age band", coverage_title, reliability_title} == set(charts)
    by_predicted = [v["coverage"] for v in interval["by_predicted_band"].values() if v["n"]]
    np.testing.assert_allclose(_values(charts[coverage_title]["data"][0]["y"]), by_predicted)
    confusion = np.array(metrics["gender_confusion"]["matrix"])
    cells = [[int(text.split("<br>")[0]) for text in row] for row in charts["Gender confusion"]["data"][0]["text"]]
    np.testing.assert_array_equal(cells, confusion)
    bands = {band: v["age_mae"] for band, v in metrics["by_age_band"].items() if v["n"]}
    np.testing.assert_allclose(_values(charts["Age MAE by age band"]["data"][0]["y"]), list(bands.values()))
    app.radio(key="eval_grouping").set_value("gender")
    ok(app.run())
    assert list(figures(app)["Age MAE by gender"]["data"][0]["x"]) == ["male", "female"]


@pytest.mark.parametrize("change, words", [({"n": "many"}, "n is 'many', not a number"),
                                           ({"gender_confusion": {"labels": ["male"]}}, "gender_confusion is not"),
                                           ({"by_gender": {"male": {"n": "x"}}}, "by_gender is not a table")])
def test_evaluation_of_a_run_with_damaged_metrics_says_so(app, run_dir, tmp_path, change, words):
    """A metrics.json value of the wrong type ("n": "many") crashed the page in Streamlit's box."""
    import shutil

    run = tmp_path / "runs" / "damaged"
    shutil.copytree(run_dir, run)
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, **change}))
    app.session_state["model_choice"] = next(n for n in _run_choices(app) if n.endswith("damaged"))
    open_page(app, "evaluation")
    (error,) = app.error
    assert error.value.startswith(f"Cannot show the saved results of `{run}`: metrics.json: {words}")
    assert not app.metric


def test_evaluation_says_why_a_run_has_no_results(app, run_dir, tmp_path):
    import shutil

    runs = tmp_path / "runs"
    never = runs / "stopped-early"  # history but no model: stopped before the first epoch ended
    never.mkdir(parents=True)
    shutil.copy(run_dir / "history.csv", never / "history.csv")
    unscored = runs / "killed"  # a model, but killed before the test scoring
    shutil.copytree(run_dir, unscored, ignore=shutil.ignore_patterns("metrics.json", "predictions.csv"))
    for folder, words in ((never, "before its first epoch finished, so it saved no model"),
                          (unscored, "before scoring its best model")):
        app.session_state["model_choice"] = next(n for n in _run_choices(app) if n.endswith(folder.name))
        open_page(app, "evaluation")
        assert any(words in i.value for i in app.info), [i.value for i in app.info]
        assert not any("when it ends" in i.value for i in app.info)


def _run_choices(app) -> list[str]:
    ok(app.run())
    return app.selectbox(key="model_choice").options


def test_evaluation_shows_the_worst_age_errors_and_the_gender_mistakes_apart(app, run_dir):
    predictions = pd.read_csv(run_dir / "predictions.csv")
    open_page(app, "evaluation")
    headings = [h.value for h in app.subheader]
    assert headings.index("Largest age errors") < headings.index("Gender mistakes")
    ages, genders = error_tables(app)
    size = ages["age_error"].abs().tolist()
    assert size == sorted(size, reverse=True)
    assert size[0] == pytest.approx((predictions["age_pred"] - predictions["age_true"]).abs().max())
    wrong = predictions["gender_pred"] != predictions["gender_true"]
    assert len(genders) == min(12, wrong.sum()) and (genders["gender_pred"] != genders["gender_true"]).all()


def error_tables(app: AppTest) -> list[pd.DataFrame]:
    """The tables of predictions the evaluation page lists (not, e.g., the skipped rows of a dataset)."""
    return [frame.value for frame in app.dataframe if "age_error" in frame.value]


def test_fresh_evaluation_on_the_test_split(app, run_dir, utkface_dir):
    split = pd.read_csv(run_dir / "split.csv")
    if "source" in split:  # a run over several sources names its rows SOURCE/FILE; the page shows UTKFace's names
        split = split[split["source"] == utkface_dir.name].assign(file=lambda t: t["file"].str.split("/", n=1).str[1])
    test_files = set(split.loc[split["split"] == "test", "file"])
    open_page(app, "evaluation", ("utkface", utkface_dir))
    app.radio(key="eval_mode").set_value("Fresh evaluation on the dataset")
    ok(app.run())
    app.number_input(key="eval_limit").set_value(40)
    ok(app.run())
    expected = min(40, len(test_files))
    assert app.button(key="eval_run").label == f"Evaluate {expected:,} images"
    app.button(key="eval_run").click()
    ok(app.run())
    assert metric(app, "Faces") == f"{expected:,}"
    assert len(figures(app)) == 8  # with interval coverage and gender reliability
    shown = error_tables(app)  # largest age errors, gender mistakes (if any)
    assert all(set(rows["file"]) <= test_files for rows in shown)
    assert len(shown[0]) == min(12, expected)
    assert len(app.image) == sum(len(rows) for rows in shown)  # each with its image


def test_fresh_evaluation_of_photos_detects_faces_and_lists_the_unscored(app, tmp_path):
    from testkit.faces import write_photo_folder

    open_page(app, "evaluation", ("folder-csv", write_photo_folder(tmp_path)))
    app.radio(key="eval_mode").set_value("Fresh evaluation on the dataset")
    ok(app.run())
    # these photos are in no split of the model: all of them are proposed, none "test split only"
    assert not any(c.key == "eval_test_only" for c in app.checkbox)
    assert app.button(key="eval_run").label == "Evaluate 3 images"
    assert "None of these images was used to train or validate this model." in captions(app)
    app.number_input(key="eval_limit").set_value(10)
    ok(app.run())
    app.button(key="eval_run").click()
    ok(app.run())
    assert metric(app, "Faces") == "2"  # one.jpg and two.jpg; none.jpg has no face
    assert any("detected and aligned" in caption.value for caption in app.caption)
    expanders = [expander.label for expander in app.expander]
    assert "2 images not scored" in expanders and "1 photos with several faces (the most confident one scored)" in expanders


def test_fresh_evaluation_of_a_bracketed_set_shows_brackets_recall_and_its_albums(app, tmp_path):
    """A set with age brackets, an album column and a row without a gender (like Adience): the
    page shows what such a set can be scored on instead of failing on the missing exact ages."""
    import shutil

    from PIL import Image

    folder = tmp_path / "bracketed"
    folder.mkdir()
    photo = Image.open(ASTRONAUT).convert("RGB")  # public domain
    for i in range(4):
        (photo.transpose(Image.FLIP_LEFT_RIGHT) if i % 2 else photo).save(folder / f"p{i}.jpg", quality=90)
    (folder / "labels.csv").write_text("file,age_lo,age_hi,gender,album\np0.jpg,25,32,female,a\np1.jpg,38,43,female,a\n"
                                       "p2.jpg,25,32,,b\np3.jpg,4,6,male,b\n")
    open_page(app, "evaluation", ("folder-csv", folder))
    app.radio(key="eval_mode").set_value("Fresh evaluation on the dataset")
    ok(app.run())
    app.button(key="eval_run").click()
    ok(app.run())
    assert metric(app, "Faces") == "4" and "Age in its bracket" in [m.label for m in app.metric]
    assert "Age MAE (years)" not in [m.label for m in app.metric]
    assert {"age bracket", "album"} <= set(app.radio(key="eval_grouping").options)
    app.radio(key="eval_grouping").set_value("album")
    ok(app.run())
    shutil.rmtree(folder)


# -- single photo and batch analysis ------------------------------------------------------------

def group_photo(faces: int, seed: int = 0) -> bytes:
    """A JPEG of `faces` real faces side by side on a synthetic backdrop (made at test time): crops
    of the public-domain astronaut portrait, variants `seed`, `seed` + 1, ..., so no dataset is needed."""
    from testkit.faces import astronaut_crops, background, jpeg_bytes, paste

    photo = background(260 * faces + 40, 400, seed)
    for i, crop in enumerate(astronaut_crops(faces, seed=seed)):
        paste(photo, crop, (150 + 260 * i, 200), 220)
    return jpeg_bytes(photo)


def test_single_photo_finds_every_face(app):
    open_page(app, "photo")
    assert any("Upload a photo" in i.value for i in app.info)
    app.get("file_uploader")[0].set_value(("group.jpg", group_photo(3), "image/jpeg"))
    ok(app.run())
    assert metric(app, "Faces found") == "3"
    faces = app.dataframe[0].value
    assert faces["face"].tolist() == [1, 2, 3]
    # what a person reads first, before the wide confidence bar pushes the rest out of view
    assert list(faces.columns[:6]) == ["face", "gender", "age", "age range", "quality", "issues"]
    np.testing.assert_allclose(faces["confidence"], np.maximum(faces["p_female"], 1 - faces["p_female"]), atol=1e-4)
    assert faces["age range"].str.fullmatch(r"\d+-\d+").all() and faces["quality"].isin(["good", "poor"]).all()
    assert faces["gender"].isin(["male", "female"]).all() and faces["age"].between(0, 116).all()
    assert len(app.image) == 1 + 3  # the annotated photo and each face


def test_single_photo_from_the_camera(app):
    open_page(app, "photo")
    app.radio(key="photo_mode").set_value("Take a photo")
    ok(app.run())
    app.camera_input[0].set_value(("shot.jpg", group_photo(1, seed=3), "image/jpeg"))
    ok(app.run())
    assert metric(app, "Faces found") == "1"


def test_single_photo_explains_an_unreadable_file(app):
    open_page(app, "photo")
    app.get("file_uploader")[0].set_value(("broken.jpg", b"not a picture", "image/jpeg"))
    ok(app.run())
    assert any("Cannot use broken.jpg" in e.value for e in app.error)


def test_a_photo_over_the_upload_cap_is_refused_with_a_message(app, upload_cap_1mb):
    open_page(app, "photo")
    assert app.get("file_uploader")[0].proto.label == "Photo (at most 1 MB)"
    assert any("Photos over 1 MB are refused" in i.value for i in app.info)
    app.get("file_uploader")[0].set_value(("big.jpg", bytes(1_500_000), "image/jpeg"))
    ok(app.run())
    assert [e.value for e in app.error] == ["This upload is 1.4 MB; the limit is 1 MB. Use a smaller copy of the photo."]


def test_error_details_stay_on_the_server(app, monkeypatch, shipped_error_details, caplog):
    import core.analysis.pipeline

    def broken(data):
        raise RuntimeError("cannot read /srv/private/secret.jpg")

    monkeypatch.setattr(core.analysis.pipeline, "load_photo", broken)
    open_page(app, "photo")
    app.get("file_uploader")[0].set_value(("photo.jpg", b"x" * 100, "image/jpeg"))
    with caplog.at_level("ERROR", logger="dashboard"):
        app.run()
    assert not app.exception  # not Streamlit's box (its type, message and links to outside help): ours
    (shown,) = app.error
    assert shown.value.startswith("Something went wrong on this page, and it stopped.") and "secret" not in shown.value
    reference = shown.value.split("reference ")[1].split()[0]
    (record,) = [r for r in caplog.records if reference in r.getMessage()]
    assert "secret.jpg" in str(record.exc_info[1])  # the details, for the operator


def test_analyses_over_the_servers_cap_wait_then_are_refused(app, monkeypatch):
    """Visitors pressing Analyse together could add up the server's memory: the server runs
    AGE_GENDER_MAX_ANALYSES at once, a session one."""
    import threading

    from dashboard import capacity

    photo = ASTRONAUT.read_bytes()
    monkeypatch.setattr(capacity, "WAIT_SECONDS", 0.5)
    slots = capacity.server_slots()
    taken = 0
    while slots.take(timeout=0):  # every place taken, as by other visitors' analyses
        taken += 1
    try:
        assert taken == capacity.max_analyses() == 2
        open_page(app, "photo")
        app.get("file_uploader")[0].set_value(("photo.jpg", photo, "image/jpeg"))
        ok(app.run())
        (warning,) = app.warning
        assert warning.value.startswith("Not analysed: the server stayed busy for ")
        assert warning.value.endswith(" s (2 analyses at once): try again in a moment.")
        assert not app.metric
    finally:
        for _ in range(taken):
            slots.give()
    ok(app.run())
    assert metric(app, "Faces found") == "1" and slots.busy == 0  # its place given back
    held = threading.Lock()
    held.acquire()
    app.session_state["analysis_lock"] = held  # this session's other analysis, still running
    ok(app.run())
    assert [w.value for w in app.warning] == [
        "Not analysed: an analysis of this session is still running: wait for it to end, then try again."]


@pytest.fixture
def shipped_error_details():
    """client.showErrorDetails as .streamlit/config.toml ships it (AppTest runs in this process)."""
    import tomllib

    from streamlit import config

    original = config.get_option("client.showErrorDetails")
    shipped = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    config.set_option("client.showErrorDetails", shipped.get("client", {}).get("showErrorDetails", original))
    yield
    config.set_option("client.showErrorDetails", original)


def test_a_79_megapixel_jpeg_is_decoded_downscaled(tmp_path):
    """The single-photo page loads photos with core.analysis.pipeline.load_photo: measured in a child
    process, its peak memory must stay far below the 237 MB of the decoded full-size image."""
    import subprocess
    import sys

    from PIL import Image

    photo = tmp_path / "huge.jpg"
    Image.new("RGB", (10240, 7712), (150, 110, 90)).save(photo, quality=90)  # 79.0 megapixels
    child = (f"import resource, sys; sys.path.insert(0, {str(PROJECT_ROOT)!r})\n"
             "from core.analysis.pipeline import load_photo\n"
             f"data = open({str(photo)!r}, 'rb').read()\n"
             "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
             "image, scale = load_photo(data)\n"
             "grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
             "print(image.shape[1], image.shape[0], scale, grown // 1024)")
    width, height, scale, grown_mb = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                                                    check=True).stdout.split()
    assert (int(width), int(height)) == (1280, 964) and float(scale) == 8.0
    assert int(grown_mb) < 40, f"peak memory grew by {grown_mb} MB"


def test_batch_of_uploads_and_a_zip(app):
    import cv2

    from testkit.faces import jpeg_bytes

    blank = cv2.imencode(".png", np.full((300, 400, 3), 128, np.uint8))[1].tobytes()
    archive = _zip({"trip/one.jpg": group_photo(1, seed=5), "../escape.jpg": b"x"})
    open_page(app, "batch")
    app.get("file_uploader")[0].set_value([("three.jpg", group_photo(3, seed=4), "image/jpeg"),
                                           ("blank.png", blank, "image/png"),
                                           ("bad.jpg", jpeg_bytes(np.zeros((40, 40, 3), np.uint8))[:50], "image/jpeg"),
                                           ("photos.zip", archive, "application/zip")])
    ok(app.run())
    app.button(key="batch_run").click()
    ok(app.run())
    assert [metric(app, m) for m in ("Images", "Faces found", "Images without a face", "Unreadable")] == ["4", "4", "1", "1"]
    results = app.dataframe[-1].value
    assert sorted(results["file"].unique()) == ["bad.jpg", "blank.png", "photos/trip/one.jpg", "three.jpg"]
    assert (results.loc[results["file"] == "three.jpg", "status"] == "ok").sum() == 3
    assert app.dataframe[0].value["file"].tolist() == ["../escape.jpg"]  # left out, and said so
    assert app.get("download_button")[0].proto.label == "Download the results (CSV)"
    charts = figures(app)
    assert sum(len(_values(t["x"])) for t in charts["Age of the people found"]["data"]) == 4


def test_batch_on_a_server_folder_of_aligned_crops(app, tmp_path):
    from testkit.faces import astronaut_crops, jpeg_bytes

    for i, crop in enumerate(astronaut_crops(5, seed=7)):
        (tmp_path / f"crop{i}.jpg").write_bytes(jpeg_bytes(crop))
    open_page(app, "batch")
    app.radio(key="batch_mode").set_value("A folder on the server")
    ok(app.run())
    app.text_input(key="batch_folder").set_value(str(tmp_path))
    app.checkbox(key="batch_aligned").check()
    app.checkbox(key="batch_check").check()
    ok(app.run())
    app.number_input(key="batch_threshold").set_value(18)
    app.button(key="batch_run").click()
    ok(app.run())
    assert metric(app, "Images") == "5" and metric(app, "Faces found") == "5"
    assert "folder" in captions(app)
    results = next(frame.value for frame in app.dataframe if "age_check" in frame.value)
    assert results["age_check"].isin(["over", "under", "uncertain"]).all() and (results["age_threshold"] == 18).all()
    assert (results["age_low"] <= results["age_high"]).all() and results["quality"].notna().all()
    assert any(info.value.startswith("Age check at 18:") for info in app.info)


@pytest.fixture
def upload_cap_1mb():
    from streamlit import config

    original = config.get_option("server.maxUploadSize")
    config.set_option("server.maxUploadSize", 1)
    yield
    config.set_option("server.maxUploadSize", original)


def test_batch_uploads_over_the_cap_are_refused_with_a_message(app, upload_cap_1mb):
    open_page(app, "batch")
    app.get("file_uploader")[0].set_value([(f"{i}.jpg", bytes(700_000), "image/jpeg") for i in range(2)])
    ok(app.run())
    assert any("limit is 1 MB" in e.value for e in app.error)
    assert not any(b.key == "batch_run" for b in app.button)


def test_the_batch_page_states_the_upload_cap(app, upload_cap_1mb):
    open_page(app, "batch")
    assert app.get("file_uploader")[0].proto.label == "Images, or zip files of images (at most 1 MB in total)"
    assert any("at most 1 MB in total: the browser refuses larger files" in i.value for i in app.info)


# -- uploads ---------------------------------------------------------------------------------------

class FakeUpload:
    def __init__(self, name: str, data: bytes):
        self.name, self.data = name, data

    def getvalue(self) -> bytes:
        return self.data


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_zip_members_never_land_outside_the_folder(tmp_path):
    folder = tmp_path / "upload"
    folder.mkdir()
    data = _zip({"a/ok.jpg": b"1", "../evil.jpg": b"2", "/abs.jpg": b"3", "a/../../evil2.jpg": b"4",
                 "notes.txt": b"5"})
    saved = uploads.save_uploads([FakeUpload("photos.zip", data), FakeUpload("x/../b.png", b"6")], folder)
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["upload/000001.jpg", "upload/000002.png"]
    assert saved.names == {"000001.jpg": "photos/a/ok.jpg", "000002.png": "b.png"}
    assert {name for name, _ in saved.rejected} == {"../evil.jpg", "/abs.jpg", "a/../../evil2.jpg", "notes.txt"}


def test_zip_symlinks_are_not_extracted(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("link.jpg")
        link.external_attr = (0o120777 << 16)
        archive.writestr(link, "/etc/passwd")
    saved = uploads.extract_zip(buffer.getvalue(), tmp_path / "z", uploads.Budget())
    assert saved.rejected == [("link.jpg", "links are not extracted")] and not (tmp_path / "z").exists()


def test_zip_names_that_clash_on_disk_are_all_kept_and_repeats_listed(tmp_path):
    """`a.jpg` beside `a.jpg/b.jpg` crashed the extractor (FileExistsError); a name given twice
    dropped one file without a word."""
    data = _zip({"a.jpg": b"1", "a.jpg/b.jpg": b"2", "x.jpg": b"3", "X.JPG": b"4"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile: "Duplicate name"
        with zipfile.ZipFile(buffer := io.BytesIO(data), "a") as archive:
            archive.writestr("x.jpg", b"5")
    saved = uploads.save_uploads([FakeUpload("trip.zip", buffer.getvalue())], tmp_path)
    assert sorted(saved.names.values()) == ["trip/X.JPG", "trip/a.jpg", "trip/a.jpg/b.jpg", "trip/x.jpg"]
    assert {saved.names[p.name]: p.read_bytes() for p in tmp_path.iterdir()}["trip/x.jpg"] == b"3"  # the first
    assert saved.rejected == [("x.jpg", "the archive holds another file of this name (the first is analysed)")]


def test_uploads_are_bounded_in_count_and_size(tmp_path):
    with pytest.raises(uploads.UploadError, match="too many images"):
        uploads.extract_zip(_zip({f"{i}.jpg": b"x" for i in range(4)}), tmp_path / "a", uploads.Budget(files=3))
    with pytest.raises(uploads.UploadError, match="too much data"):
        uploads.extract_zip(_zip({"big.jpg": bytes(5000)}), tmp_path / "b", uploads.Budget(size=4000))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    with pytest.raises(uploads.UploadError, match="not a readable zip"):
        uploads.extract_zip(b"not a zip", tmp_path / "c", uploads.Budget())


def test_encrypted_zip_members_are_left_out(tmp_path):
    archive = _rewrite_header(_zip({"locked.jpg": b"scrambled"}), "locked.jpg", FLAGS, 0x1)  # password-protected
    assert uploads.extract_zip(archive, tmp_path / "z", uploads.Budget()).rejected == [("locked.jpg", "encrypted")]


def test_a_zip_bomb_writes_nothing(tmp_path):
    bomb = _zip({"bomb.jpg": bytes(50 << 20)}, zipfile.ZIP_DEFLATED)  # 50 MB of zeros in a 50 kB zip
    with pytest.raises(uploads.UploadError, match="zip bomb"):
        uploads.save_uploads([FakeUpload("bomb.zip", bomb)], tmp_path)
    assert not any(tmp_path.iterdir())


def test_an_archive_that_lies_about_a_size_is_deleted_at_once(tmp_path):
    archive = _rewrite_header(_zip({"a.jpg": b"ok" * 10, "b.jpg": bytes(1 << 20)}), "b.jpg", SIZE, 1000)
    with pytest.raises(uploads.UploadError, match="b.jpg is damaged"):
        uploads.save_uploads([FakeUpload("photos.zip", archive)], tmp_path)
    assert not any(tmp_path.iterdir())  # a.jpg, extracted first, is gone too


FLAGS, SIZE = ("<H", 6, 8), ("<I", 22, 24)  # a header field: format, offset in the local and the central header


def _rewrite_header(archive: bytes, name: str, field: tuple[str, int, int], value: int) -> bytes:
    """The zip with one field of `name`'s local and central headers set to `value`."""
    import struct

    data, encoded = bytearray(archive), name.encode()
    fmt, local_at, central_at = field
    for signature, name_length_at, name_at, field_at in ((b"PK\x03\x04", 26, 30, local_at),
                                                         (b"PK\x01\x02", 28, 46, central_at)):
        at = data.find(signature)
        while at != -1:
            length = struct.unpack_from("<H", data, at + name_length_at)[0]
            if data[at + name_at:at + name_at + length] == encoded:
                struct.pack_into(fmt, data, at + field_at, value)
            at = data.find(signature, at + 4)
    return bytes(data)


def test_duplicate_upload_names_are_kept_apart(tmp_path):
    saved = uploads.save_uploads([FakeUpload("me.jpg", b"1"), FakeUpload("ME.jpg", b"2"), FakeUpload("me.jpg", b"3")],
                                 tmp_path)
    assert saved.names == {"000001.jpg": "me.jpg", "000002.jpg": "ME.jpg", "000003.jpg": "me (2).jpg"}
    assert sorted(p.read_bytes() for p in tmp_path.iterdir()) == [b"1", b"2", b"3"]


def test_batch_results_keep_the_names_the_user_gave(app):
    """`José.jpg` came back as `Jos_.jpg` and CJK names as `____.jpg`: rows must name the photos."""
    photo = ASTRONAUT.read_bytes()
    archive = _zip({"été/Zoë.jpg": photo, "a.jpg": photo, "a.jpg/b.jpg": photo})
    open_page(app, "batch")
    app.get("file_uploader")[0].set_value([("José.jpg", photo, "image/jpeg"), ("写真.jpg", photo, "image/jpeg"),
                                           ("Über uns.zip", archive, "application/zip")])
    ok(app.run())
    app.button(key="batch_run").click()
    ok(app.run())
    results = app.dataframe[-1].value
    assert list(results["file"]) == ["José.jpg", "写真.jpg", "Über uns/été/Zoë.jpg", "Über uns/a.jpg",
                                     "Über uns/a.jpg/b.jpg"]
    assert set(results["status"]) == {"ok"}
