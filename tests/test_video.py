"""Recorded video: people counted once, in order, through occlusions and across scene cuts, with
the outputs the command line and the Video page write.

Videos are made here, at test time, from the public-domain astronaut portrait (docs/assets):
three people walk a scripted clip (`testkit.clips.entrance`: one passes behind a pillar, a scene
cut puts a new person where another was), so every count and order below is known in advance.
The model is the untrained tiny one: counting, tracking and the files do not depend on its
answers.
"""
from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.analysis.pipeline import FaceAnalyzer
from core.config import PROJECT_ROOT
from core.detect import detector_for
from core.detect.face import Face
from core.inference.predictor import Prediction
from core.video.cuts import CutDetector
from core.video.people import MAX_READINGS, PERSON_COLUMNS, People, Readings, people_frame
from core.video.reader import VideoError, VideoReader
from core.video.recorded import FACE_COLUMNS, VideoOutputs, VideoSettings, analyse_video, detector_use
from core.video.tracking import IouTracker
from testkit.clips import Clip, Walker, astronaut_faces, crowd, entrance, render, write_audio_only, write_clip, write_video

PAGE = PROJECT_ROOT / "dashboard" / "views" / "video.py"


@pytest.fixture(scope="module")
def faces() -> list[np.ndarray]:
    return astronaut_faces(3)


@pytest.fixture(scope="module")
def scene(faces, tmp_path_factory) -> tuple[Clip, Path]:
    """The scripted clip (640x360, 15 fps, 8 s: 120 frames) as an H.264 MP4."""
    clip = entrance()
    return clip, write_clip(clip, faces, tmp_path_factory.mktemp("clip") / "entrance.mp4")


@pytest.fixture(scope="module")
def analyzer(tiny_model_dir) -> FaceAnalyzer:
    from core.inference.predictor import Predictor

    return FaceAnalyzer(Predictor(tiny_model_dir), detector_for(detector_use("yunet")))


@pytest.fixture(scope="module")
def analysed(scene, analyzer, tmp_path_factory):
    """The clip through the job, every output asked for."""
    folder = tmp_path_factory.mktemp("out")
    outputs = VideoOutputs(folder / "people.csv", folder / "faces.csv", folder / "annotated.mp4")
    return analyse_video(scene[1], analyzer, outputs, thumbnails=True), outputs


def decoded_frames(path: Path) -> tuple[int, tuple[int, int], str]:
    """(frames decoded, (width, height), codec) of a video file."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for _ in container.decode(stream)), (stream.width, stream.height), stream.codec_context.name


# -- the people ------------------------------------------------------------------------------------

def test_each_person_is_counted_once_in_order_of_appearance(scene, analysed):
    clip, _ = scene
    run, outputs = analysed
    assert run.frames == clip.frames == 120
    assert [p.person for p in run.people] == [1, 2, 3]
    first, second, third = run.people
    a, b, c = clip.walkers
    # A walks the top lane from the left, B the bottom lane from the right, C stands where B was after the cut
    assert first.y + first.h / 2 < clip.height / 2 < second.y + second.h / 2
    assert a.enter_s <= first.first_seen_s < b.enter_s <= second.first_seen_s < clip.cuts[0] <= third.first_seen_s
    assert third.x + third.w / 2 < clip.width / 3 and third.y + third.h / 2 > clip.height / 2
    assert second.last_seen_s < clip.cuts[0]  # B ends at the cut: C is somebody else
    table = pd.read_csv(outputs.people)
    assert list(table.columns) == PERSON_COLUMNS and list(table["person"]) == [1, 2, 3]
    assert set(table["gender"]) <= {"male", "female"} and (table["readings"] >= table["good_readings"]).all()
    ranged = table.dropna(subset=["age_low"])  # the tiny model has no calibration: no intervals
    assert (ranged["age_low"] <= ranged["age"]).all() and (ranged["age"] <= ranged["age_high"] + 1).all()
    assert sorted(run.thumbnails) == [1, 2, 3] and all(t.shape[2] == 3 and max(t.shape[:2]) <= 128
                                                       for t in run.thumbnails.values())


def test_a_person_hidden_behind_a_pillar_stays_one_person(scene, analysed):
    clip, _ = scene
    run, _ = analysed
    a = clip.walkers[0]
    pillar = clip.pillars[0]
    assert 0.5 < clip.hidden_seconds(a) < 1.0  # really hidden, for less than a second
    # when A's face is at the pillar's near and far edges
    near = a.enter_s + (pillar.x - a.x0) / (a.x1 - a.x0) * (a.leave_s - a.enter_s)
    far = a.enter_s + (pillar.x + pillar.width / clip.width - a.x0) / (a.x1 - a.x0) * (a.leave_s - a.enter_s)
    first = run.people[0]
    assert first.first_seen_s < near and first.last_seen_s > far  # seen before and after, one row
    stretches = [(start, end) for person, start, end in run.spans if person == 1]
    assert len(stretches) == 2 and stretches[0][1] < far and stretches[1][0] > near  # with the gap where it was hidden


def test_gap_bridging_and_cut_detection_are_what_keep_the_count_right(scene, analyzer, tmp_path):
    outputs = VideoOutputs(tmp_path / "people.csv")
    split = analyse_video(scene[1], analyzer, outputs, VideoSettings(max_gap_s=0.0))
    assert len(split.people) > 3  # without bridging, the two who pass the pillar count twice
    merged = analyse_video(scene[1], analyzer, outputs, VideoSettings(cuts=False))
    assert len(merged.people) < 3  # without cuts, C is taken for B walking on


def test_faces_csv_has_every_face_shown_with_its_person(scene, analysed):
    run, outputs = analysed
    with outputs.faces.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == FACE_COLUMNS
    assert {int(row["person"]) for row in rows} == {1, 2, 3}
    assert len(rows) == sum(p.frames_seen for p in run.people)
    frames = [int(row["frame"]) for row in rows]
    assert frames == sorted(frames) and max(frames) < 120
    assert all(row["file"] == "entrance.mp4" and float(row["time_s"]) == pytest.approx(int(row["frame"]) / 15, abs=1e-3)
               for row in rows)


def test_the_annotated_copy_decodes_with_the_inputs_frames(scene, analysed):
    _, outputs = analysed
    frames, size, codec = decoded_frames(outputs.annotated)
    assert (frames, size, codec) == (120, (640, 360), "h264")


def test_a_webm_copy_is_vp9_with_the_inputs_frames(faces, analyzer, tmp_path):
    clip = Clip(320, 240, 10, 2.0, (Walker(0, 0, 2, 0.5, 0.5, 0.5, 150),), seed=3)
    video = write_clip(clip, faces, tmp_path / "short.mp4")
    outputs = VideoOutputs(tmp_path / "people.csv", annotated=tmp_path / "copy.webm")
    analyse_video(video, analyzer, outputs)
    assert decoded_frames(outputs.annotated) == (20, (320, 240), "vp9")


def test_an_odd_sized_video_gets_an_even_sized_copy_with_all_frames(analyzer, tmp_path):
    video = write_video([np.full((121, 161, 3), i * 9, np.uint8) for i in range(12)], tmp_path / "odd.mkv", 12,
                        codec="ffv1")
    outputs = VideoOutputs(tmp_path / "people.csv", annotated=tmp_path / "copy.mp4")
    analyse_video(video, analyzer, outputs)
    assert decoded_frames(outputs.annotated)[:2] == (12, (160, 120))


def test_a_scene_cut_is_found_on_its_frame_and_nowhere_else(scene, faces):
    clip, _ = scene
    detector = CutDetector()
    cuts = [index for index, (frame, _) in enumerate(render(clip, faces)) if detector.is_cut(frame)]
    assert cuts == [next(i for i in range(clip.frames) if i / clip.fps >= clip.cuts[0])]


# -- people from tracks ------------------------------------------------------------------------------

def face_at(x: float, y: float, size: float = 80) -> Face:
    return Face(round(x), round(y), round(size), round(size), 0.9, (x + 0.3 * size, y + 0.4 * size),
                (x + 0.7 * size, y + 0.4 * size))


class Feed:
    """Faces into IouTracker and People as FrameProcessor feeds them, 10 frames per second."""

    def __init__(self, max_gap_s: float = 1.5):
        self.tracker, self.people, self.frame, self.max_gap_s = IouTracker(), People(thumbnails=False), 0, max_gap_s
        self.image = np.zeros((360, 640, 3), np.uint8)

    def step(self, *faces: Face) -> list[int]:
        time_s = self.frame / 10
        tracks = self.tracker.update(list(faces), 0.15, 1, motion=True)
        ended = self.people.detected(tracks, self.tracker.tracks, self.frame, time_s, self.image.shape, 3, self.max_gap_s)
        self.tracker.end(set(ended))
        for track in tracks:
            self.people.read(track.track_id, Prediction(30.0, 0.2, 25, 35), None, track.face, self.frame, time_s,
                             self.image)
        self.people.shown([t.track_id for t in tracks], self.frame, time_s)
        self.frame += 1
        return [self.people.number(t.track_id) for t in tracks]


def test_a_person_lost_for_less_than_the_gap_is_found_where_their_motion_leads():
    feed = Feed()
    for i in range(10):
        assert feed.step(face_at(20 + 20 * i, 100)) == [1]
    for _ in range(8):  # 0.8 s behind something, still walking 200 px/s
        feed.step()
    assert feed.step(face_at(20 + 20 * 18, 100)) == [1]
    assert len(feed.people.results()) == 1


def test_a_person_coming_out_half_hidden_is_still_them():
    feed = Feed()
    for i in range(10):
        feed.step(face_at(20 + 20 * i, 100))
    for _ in range(4):
        feed.step()
    half = Face(20 + 20 * 14 + 45, 100, 35, 80, 0.8, (20 + 20 * 14 + 55.0, 130.0), (20 + 20 * 14 + 70.0, 130.0))
    assert feed.step(half) == [1]  # narrower (a post still covers its left half), not smaller


def test_someone_appearing_elsewhere_or_after_the_gap_is_somebody_new():
    feed = Feed(max_gap_s=1.0)
    for _ in range(5):
        feed.step(face_at(300, 50))
    for _ in range(3):
        feed.step()
    for _ in range(4):
        assert feed.step(face_at(300, 250)) == [2]  # far from where person 1 was (standing still)
    for _ in range(15):
        feed.step()
    assert feed.step(face_at(300, 250)) == [3]  # where person 2 was, but 1.6 s later


def test_a_person_who_walked_out_of_the_picture_is_not_linked():
    feed = Feed()
    for i in range(6):
        feed.step(face_at(420 + 40 * i, 100))  # out at the right edge, 400 px/s
    feed.step()
    feed.step()
    assert feed.step(face_at(560, 100)) == [2]  # a newcomer at the edge: person 1 would be far beyond it


def test_no_link_across_a_scene_cut():
    feed = Feed()
    for _ in range(5):
        feed.step(face_at(300, 100))
    feed.people.cut()
    feed.tracker.end()
    assert feed.step(face_at(300, 100)) == [2]


def test_a_false_alarm_gives_its_number_back_and_is_not_a_person():
    feed = Feed()
    assert feed.step(face_at(100, 100)) == [1]  # one detection, then gone: a false alarm
    feed.step()
    feed.step()
    assert feed.step(face_at(400, 200)) == [1]  # the number is free again
    for _ in range(3):
        feed.step(face_at(400, 200))
    assert [p.person for p in feed.people.results()] == [1] and not feed.people.counted(1, 0)


def test_readings_stay_bounded_and_the_answer_ignores_outliers_and_poor_views():
    readings = Readings()
    rng = np.random.default_rng(0)
    for i in range(10_000):
        outlier = i % 10 == 0
        readings.add(Prediction(90.0 if outlier else 30.0 + rng.normal(0, 1), 0.9 if outlier else 0.2, 25, 35), True)
        readings.add(Prediction(70.0, 1.0, 60, 80), False)  # poor views, ignored while good ones exist
    assert readings.count == 20_000 and readings.good == 10_000 and readings.kept <= MAX_READINGS
    answer, good = readings.aggregate()
    assert good and abs(answer.age - 30) < 1 and answer.p_female == pytest.approx(0.2, abs=0.01)
    assert (answer.age_low, answer.age_high) == (25, 35)
    poor_only = Readings()
    poor_only.add(Prediction(70.0, 1.0, 60, 80), False)
    assert poor_only.aggregate() == (Prediction(70.0, 1.0, 60, 80), False)


def test_people_who_cannot_come_back_keep_their_answer_in_a_few_bytes():
    feed = Feed(max_gap_s=1.0)
    for i in range(30):
        feed.step(face_at(100 + i, 100))
    before = feed.people.results()
    for _ in range(15):  # lost for 1.5 s: past the gap, they cannot be linked again
        feed.step()
    feed.step(face_at(400, 250))
    assert feed.people.results()[:1] == before
    readings = Readings()
    for age in (20.0, 30.0, 40.0):
        readings.add(Prediction(age, 0.5, 10, 50), True)
    answer = readings.aggregate()
    readings.freeze()
    assert readings.aggregate() == answer and readings.values.nbytes == 0 and readings.count == 3


def test_person_rows_are_typed_and_spreadsheet_safe(analysed, tmp_path):
    run, _ = analysed
    table = people_frame(p.row() for p in run.people)
    assert list(table.columns) == PERSON_COLUMNS
    assert str(table["person"].dtype) == "Int64" and str(table["age"].dtype) == "float64"
    assert table["age_check"].isna().all()


# -- the command line --------------------------------------------------------------------------------

def run_cli(*args, timeout=300, cwd=None):
    return subprocess.run([sys.executable, "-m", "core", "video", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or PROJECT_ROOT, timeout=timeout)


def one_error_line(result, code: int = 1) -> str:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_the_command_writes_people_faces_and_a_copy(scene, tiny_model_dir, tmp_path):
    result = run_cli(scene[1], "--out", tmp_path / "people.csv", "--faces", tmp_path / "faces.csv",
                     "--annotated", tmp_path / "out.mp4", "--model", tiny_model_dir)
    assert result.returncode == 0, result.stderr
    assert "3 people in entrance.mp4 (120 frames, 8.0 s)" in result.stdout
    assert len(pd.read_csv(tmp_path / "people.csv")) == 3
    assert decoded_frames(tmp_path / "out.mp4")[0] == 120


@pytest.mark.parametrize("kind, message", [
    ("random bytes", "is not a video this tool can read"),
    ("audio only", "has no video stream (it holds only sound)"),
    ("truncated", "is damaged or cut short"),  # an MP4 whose index was at its end
    ("empty", "is not a video this tool can read"),
])
def test_a_bad_video_ends_with_one_error_line(scene, tiny_model_dir, tmp_path, kind, message):
    video = tmp_path / ("clip.m4a" if kind == "audio only" else "clip.mp4")
    if kind == "random bytes":
        video.write_bytes(np.random.default_rng(0).bytes(20_000))
    elif kind == "audio only":
        write_audio_only(video)
    elif kind == "truncated":
        data = scene[1].read_bytes()
        video.write_bytes(data[:len(data) // 2])
    else:
        video.write_bytes(b"")
    line = one_error_line(run_cli(video, "--out", tmp_path / "people.csv", "--model", tiny_model_dir))
    assert message in line


def test_a_truncated_video_keeps_the_people_seen_before_the_damage(faces, tiny_model_dir, tmp_path):
    clip = Clip(640, 360, 15, 6.0, (Walker(0, 0, 6, 0.3, 0.5, 0.5, 150),), seed=1)
    video = write_clip(clip, faces, tmp_path / "clip.webm", codec="libvpx-vp9")  # WebM cut short decodes quietly
    video.write_bytes(video.read_bytes()[:int(video.stat().st_size * 0.85)])  # the first key frame is most of it
    line = one_error_line(run_cli(video, "--out", tmp_path / "people.csv", "--model", tiny_model_dir))
    assert "is truncated" in line and "keeps the 1 person seen before that" in line
    assert len(pd.read_csv(tmp_path / "people.csv")) == 1


def test_a_video_without_faces_gives_an_empty_table_and_says_so(tiny_model_dir, tmp_path):
    video = write_video([np.full((120, 160, 3), 90, np.uint8)] * 10, tmp_path / "empty.mp4", 10)
    result = run_cli(video, "--out", tmp_path / "people.csv", "--model", tiny_model_dir)
    assert result.returncode == 0 and "no people found in empty.mp4" in result.stderr
    assert list(pd.read_csv(tmp_path / "people.csv").columns) == PERSON_COLUMNS
    assert len(pd.read_csv(tmp_path / "people.csv")) == 0


@pytest.mark.parametrize("args, message", [
    (["{video}", "--out", "{video}"], "must end in .csv"),
    (["{video}", "--out", "{tmp}/p.csv", "--faces", "{tmp}/p.csv"], "must be different files"),
    (["{video}", "--out", "{tmp}/p.csv", "--annotated", "{tmp}/copy.avi"], "must end in .mp4 or .webm"),
    (["{tmp}/missing.mp4", "--out", "{tmp}/p.csv"], "no such video file"),
    (["{video}", "--out", "{tmp}/p.csv", "--faces", "{tmp}/no/such/folder/f.csv"], "is not a folder this user can write in"),
    (["{video}", "--out", "{tmp}/p.csv", "--every", "0"], "every must be 1..100"),
    (["{video}", "--out", "{tmp}/p.csv", "--detector", "blazeface", "--small-faces"], "small faces need the yunet"),
])
def test_wrong_options_end_with_one_error_line_and_write_nothing(scene, tmp_path, args, message):
    args = [a.format(video=scene[1], tmp=tmp_path) for a in args]
    assert message in one_error_line(run_cli(*args), code=2)
    assert not (tmp_path / "p.csv").exists()


def test_ctrl_c_keeps_whole_outputs(faces, tiny_model_dir, tmp_path):
    video = write_clip(crowd(640, 360, 30, 30), faces, tmp_path / "crowd.mp4")
    process = subprocess.Popen([sys.executable, "-m", "core", "video", str(video), "--out", str(tmp_path / "people.csv"),
                                "--faces", str(tmp_path / "faces.csv"), "--annotated", str(tmp_path / "copy.mp4"),
                                "--model", str(tiny_model_dir)], cwd=PROJECT_ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        faces_csv = tmp_path / "faces.csv"
        if faces_csv.exists() and faces_csv.stat().st_size > 40_000:  # a few hundred rows: people are in
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and stderr.strip().splitlines()[-1] == "interrupted"
    people = pd.read_csv(tmp_path / "people.csv")
    rows = pd.read_csv(tmp_path / "faces.csv")
    assert len(people) >= 1 and set(rows["person"]) == set(people["person"])
    frames = decoded_frames(tmp_path / "copy.mp4")[0]
    assert rows["frame"].max() < frames < 900  # every frame analysed is in the copy, and it stopped early


# -- reading -----------------------------------------------------------------------------------------

def test_the_reader_gives_times_and_facts(scene):
    with VideoReader(scene[1]) as reader:
        assert (reader.info.width, reader.info.height, reader.info.fps, reader.info.frames) == (640, 360, 15.0, 120)
        times = [frame.time_s for frame in reader.frames()]
    assert len(times) == 120 and times[:3] == pytest.approx([0, 1 / 15, 2 / 15])


def test_the_job_refuses_to_write_over_its_input(scene, analyzer, tmp_path):
    copy = tmp_path / "in.mp4"
    copy.write_bytes(scene[1].read_bytes())
    with pytest.raises(ValueError, match="input video"):
        analyse_video(copy, analyzer, VideoOutputs(tmp_path / "people.csv", annotated=copy))
    assert copy.read_bytes() == scene[1].read_bytes()


def test_a_missing_video_is_a_video_error(tmp_path):
    with pytest.raises(VideoError, match="no such video file"):
        VideoReader(tmp_path / "nothing.mp4")


# -- the live camera's small faces -------------------------------------------------------------------

def test_the_small_face_live_setting_finds_48_px_faces_the_default_misses(faces, tiny_model_dir):
    from core.inference.predictor import Predictor
    from core.video.live import FrameProcessor

    size = round(48 / 0.5)  # squares whose face box is about 48 px (YuNet's box is half the astronaut's square)
    walkers = tuple(Walker(i, 0, 10, 0.2 + 0.3 * (i % 3), 0.22 + 0.3 * (i % 3), 0.3 + 0.4 * (i // 3), size)
                    for i in range(6))
    frames = [frame for frame, _ in render(Clip(640, 480, 15, 1.0, walkers, seed=4), faces)]
    found = {}
    for use in ("live", "live, small faces"):
        processor = FrameProcessor(FaceAnalyzer(Predictor(tiny_model_dir), detector_for(use)))
        found[use] = [len(processor.process(frame)[1]) for frame in frames]
    assert max(found["live"]) <= 1
    assert min(found["live, small faces"]) == 6


# -- the Video page ----------------------------------------------------------------------------------

@pytest.fixture
def page(scene, tiny_model_dir, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from dashboard import access

    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "entrance.mp4").write_bytes(scene[1].read_bytes())
    monkeypatch.setenv("AGE_GENDER_MODEL_DIR", str(tiny_model_dir))
    monkeypatch.setenv(access.ROOTS_ENV, str(shared))
    app = AppTest.from_file(str(PAGE), default_timeout=120)
    app.shared = shared
    return app


def test_the_page_analyses_a_server_video_into_people_charts_video_and_downloads(page):
    page.run()
    assert not page.exception
    page.radio(key="video_mode").set_value("A video on the server").run()
    page.text_input(key="video_path").set_value(str(page.shared / "entrance.mp4")).run()
    page.button(key="video_run").click().run()
    assert not page.exception, [e.value for e in page.exception]
    assert {m.label: m.value for m in page.metric}["People"] == "3"
    table = page.dataframe[0].value
    assert list(table["person"]) == [1, 2, 3] and table["view"].str.startswith("data:image/png").all()
    assert [c for c in table.columns if c != "view"] == PERSON_COLUMNS
    titles = {json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in page.get("plotly_chart")}
    assert {"Who was in view when", "Age of the people", "Gender of the people"} <= titles
    assert len(page.get("video")) == 1
    assert {button.label for button in page.get("download_button")} >= {"people.csv", "Annotated video (MP4)"}


def test_the_page_waits_its_turn_among_the_servers_analyses(page, monkeypatch):
    """A video is one of the server's analyses, like a photo or a batch: with every place taken
    the page says so instead of adding its load to the others'."""
    from dashboard import capacity

    monkeypatch.setattr(capacity, "WAIT_SECONDS", 0.5)
    slots, taken = capacity.server_slots(), 0
    while slots.take(timeout=0):
        taken += 1
    try:
        page.run()
        page.radio(key="video_mode").set_value("A video on the server").run()
        page.text_input(key="video_path").set_value(str(page.shared / "entrance.mp4")).run()
        page.button(key="video_run").click().run()
        assert [w.value for w in page.warning][0].startswith("Not analysed: the server stayed busy")
        assert "People" not in {m.label for m in page.metric}
    finally:
        for _ in range(taken):
            slots.give()


def test_the_page_refuses_a_path_outside_the_shared_folder_and_a_non_video(page, tmp_path):
    (page.shared / "notes.txt").write_text("hello")
    page.run()
    page.radio(key="video_mode").set_value("A video on the server").run()
    page.text_input(key="video_path").set_value(str(PROJECT_ROOT / "README.md")).run()
    assert any("not found, or not in a folder this server shares" in e.value for e in page.error)
    page.text_input(key="video_path").set_value(str(page.shared / "notes.txt")).run()
    assert any("not one of the video types" in e.value for e in page.error)
    assert page.button(key="video_run").disabled


def test_the_page_says_what_is_wrong_with_a_bad_video(page):
    (page.shared / "broken.mp4").write_bytes(b"\x00" * 5000)
    page.run()
    page.radio(key="video_mode").set_value("A video on the server").run()
    page.text_input(key="video_path").set_value(str(page.shared / "broken.mp4")).run()
    page.button(key="video_run").click().run()
    assert not page.exception
    assert any("Cannot analyse broken.mp4" in e.value and "not a video" in e.value for e in page.error)


def test_presence_chart_draws_a_bar_per_stretch_in_gender_colours():
    from core.labels import GENDER_COLOURS
    from dashboard import charts

    spans = pd.DataFrame([(1, 0.5, 2.0, "female"), (1, 3.0, 4.0, "female"), (2, 1.0, 5.0, "male")],
                         columns=["person", "start_s", "end_s", "gender"])
    figure = charts.presence(spans, "Who was in view when")
    bars = {trace.name: trace for trace in figure.data}
    assert list(bars["female"].base) == [0.5, 3.0] and list(bars["female"].x) == [1.5, 1.0]
    assert bars["male"].marker.color == GENDER_COLOURS["male"]
    assert list(figure.layout.yaxis.categoryarray) == ["person 2", "person 1"]  # the first to appear on top

