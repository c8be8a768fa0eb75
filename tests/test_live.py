"""The live camera pipeline on real UTKFace faces moving across synthetic 640x480 video.

`core.video.live.FrameProcessor` is tested directly (detection, drawing, tracking, batching, smoothing,
threading), and the Streamlit page through AppTest with `webrtc_streamer` replaced by a stub that
feeds real frames into the page's own callback (AppTest cannot run the WebRTC component).
The model here is the untrained tiny one: these tests check plumbing and numbers that do not
depend on accuracy; smoothing is measured on a model wrapper that adds known noise.
"""
from __future__ import annotations

import sys
import threading
import types

import numpy as np
import pytest

from core.analysis.drawing import draw_faces
from core.analysis.pipeline import FaceAnalyzer
from core.config import PROJECT_ROOT
from core.detect import detector_for
from core.detect.align import align_face
from core.detect.blazeface import BlazeFaceDetector
from core.imaging.boxes import iou
from core.video.live import FrameProcessor, LiveSettings
from core.video.tracking import IouTracker
from testkit.faces import astronaut_crops, background
from testkit.video import HEIGHT, WIDTH, scene

LIVE_DETECTOR = detector_for("live")  # as the live page gets it (dashboard.state)

PAGE = PROJECT_ROOT / "dashboard" / "views" / "live.py"
FRAMES = 24


@pytest.fixture(scope="module")
def clip():
    """24 frames, a man and a woman each walking their own lane, 4 px per frame."""
    faces = astronaut_crops(2, seed=5)
    return list(scene(faces, FRAMES, speed=4, seed=5))


@pytest.fixture(scope="module")
def predictor(tiny_model_dir):
    from core.inference.predictor import Predictor

    return Predictor(tiny_model_dir)


class _Wrapped:
    """The real predictor, with `predict_distributions` (what the analyzer calls) overridable."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)


class CountingModel(_Wrapped):
    """The real predictor, recording the batch size of every call."""

    def __init__(self, inner):
        super().__init__(inner)
        self.calls = []

    def predict_distributions(self, batch):
        self.calls.append(len(batch))
        return self.inner.predict_distributions(batch)


class NoisyModel(_Wrapped):
    """Known per-call noise on top of the real predictor: age +- 6 years, p(female) +- 0.15,
    like a real model's flicker between nearly identical frames. The noisy age is returned as
    a distribution whose expectation it is (mass on the two whole years around it)."""

    def __init__(self, inner, seed: int):
        super().__init__(inner)
        self.rng = np.random.default_rng(seed)

    def predict_distributions(self, batch):
        dist, p_female = self.inner.predict_distributions(batch)
        ages = np.clip(self.inner.expected_ages(dist) + self.rng.normal(0, 6, len(dist)), 0, dist.shape[1] - 2)
        below = np.floor(ages).astype(int)
        noisy = np.zeros_like(dist)
        noisy[np.arange(len(ages)), below] = 1 - (ages - below)
        noisy[np.arange(len(ages)), below + 1] = ages - below
        p_female = np.clip(p_female + self.rng.normal(0, 0.15, len(p_female)), 0, 1)
        return noisy, p_female


def run(processor: FrameProcessor, frames) -> list[list]:
    return [processor.process(frame)[1] for frame in frames]


def test_every_face_is_found_and_drawn_as_batch_analysis_draws_it(clip, predictor):
    processor = FrameProcessor(FaceAnalyzer(predictor, LIVE_DETECTOR))
    for frame, placed in clip:
        before = frame.copy()
        annotated, states = processor.process(frame)
        assert len(states) == len(placed) == 2
        lanes = sorted(next(p.index for p in placed if p.contains(s.face.x + s.face.w / 2, s.face.y + s.face.h / 2))
                       for s in states)
        assert lanes == [0, 1]  # one box on each pasted face
        np.testing.assert_array_equal(frame, before)  # the camera frame is not drawn on
        np.testing.assert_array_equal(annotated, draw_faces(frame, [s.result for s in states]))
        for s in states:  # the box outline really changed the picture
            edge = annotated[s.face.y, s.face.x:s.face.x + s.face.w].astype(int)
            assert np.abs(edge - frame[s.face.y, s.face.x:s.face.x + s.face.w]).mean() > 20


def test_tracks_keep_their_identity_while_faces_move(clip, predictor):
    processor = FrameProcessor(FaceAnalyzer(predictor, LIVE_DETECTOR))
    lane_of_track: dict[int, set[int]] = {}
    for frame, placed in clip:
        for s in processor.process(frame)[1]:
            centre = (s.face.x + s.face.w / 2, s.face.y + s.face.h / 2)
            lane_of_track.setdefault(s.track_id, set()).add(next(p.index for p in placed if p.contains(*centre)))
    assert len(lane_of_track) == 2  # two people, two tracks, over 24 frames of motion
    assert sorted(lanes.pop() for lanes in lane_of_track.values() if len(lanes) == 1) == [0, 1]
    stats = processor.stats()
    assert stats.frames == FRAMES and stats.people == 2 and len(stats.faces) == 2
    assert sum(stats.by_gender.values()) == 2 and sum(stats.by_age_band.values()) == 2
    assert stats.fps > 0 and stats.frame_ms > 0


def test_model_runs_once_per_refresh_for_all_faces_of_a_frame(clip, predictor):
    model = CountingModel(predictor)
    processor = FrameProcessor(FaceAnalyzer(model, LIVE_DETECTOR), LiveSettings(detect_every=1, refresh_every=4))
    last = run(processor, [frame for frame, _ in clip])[-1]
    assert model.calls == [2] * (FRAMES // 4)  # frames 0, 4, 8...: both faces in one batch
    assert [s.predictions for s in last] == [FRAMES // 4] * 2


def test_detector_runs_every_nth_frame_and_frames_between_reuse_its_boxes(clip, predictor):
    model = CountingModel(predictor)
    processor = FrameProcessor(FaceAnalyzer(model, LIVE_DETECTOR), LiveSettings(detect_every=3, refresh_every=1))
    shown = run(processor, [frame for frame, _ in clip])
    assert model.calls == [2] * (FRAMES // 3)  # a model run per detection, none in between
    for n, states in enumerate(shown):
        detected_at = shown[n - n % 3]
        assert [s.face for s in states] == [s.face for s in detected_at]
    assert shown[3][0].face != shown[2][0].face  # and each detection follows the motion


def test_uses_the_batch_detector_alignment_and_model(clip, predictor):
    frame = clip[3][0]
    processor = FrameProcessor(FaceAnalyzer(predictor, LIVE_DETECTOR), LiveSettings(min_score=0.6))
    _, states = processor.process(frame)
    detected = BlazeFaceDetector(min_score=0.6, full_range="never").detect(frame)
    assert sorted((f.x, f.y, f.w, f.h) for f in detected) == sorted((s.face.x, s.face.y, s.face.w, s.face.h) for s in states)
    crops = np.stack([align_face(frame, s.face, predictor.image_size) for s in states])
    ages, p_female = predictor.predict_arrays(crops)
    np.testing.assert_allclose([s.latest.age for s in states], ages, rtol=1e-5)
    np.testing.assert_allclose([s.latest.p_female for s in states], p_female, rtol=1e-5)


def test_smoothing_steadies_the_labels(clip, predictor):
    def label_series(smoothing: int) -> dict[int, np.ndarray]:
        processor = FrameProcessor(FaceAnalyzer(NoisyModel(predictor, seed=1), LIVE_DETECTOR),
                                   LiveSettings(smoothing=smoothing, detect_every=1, refresh_every=1))
        series: dict[int, list] = {}
        for states in run(processor, [frame for frame, _ in clip]):
            for s in states:
                series.setdefault(s.track_id, []).append((s.result.age, s.result.p_female))
        return {track: np.array(values)[10:] for track, values in series.items()}  # window filled

    raw, smooth = label_series(1), label_series(10)
    assert raw.keys() == smooth.keys() and len(raw) == 2
    for track in raw:
        raw_jitter = np.abs(np.diff(raw[track], axis=0)).mean(axis=0)
        smooth_jitter = np.abs(np.diff(smooth[track], axis=0)).mean(axis=0)
        assert raw_jitter[0] > 3.0  # the noise is really there: several years frame to frame
        assert (smooth_jitter < 0.3 * raw_jitter).all(), (raw_jitter, smooth_jitter)
        # averaging steadies the label without moving it: same centre as the raw labels
        assert abs(smooth[track][:, 0].mean() - raw[track][:, 0].mean()) < 3.0


def test_a_missed_detection_keeps_the_track_but_a_long_absence_ends_it(clip, predictor):
    processor = FrameProcessor(FaceAnalyzer(predictor, LIVE_DETECTOR), LiveSettings(detect_every=1, max_missed=3))
    frames = [frame for frame, _ in clip]
    empty = background(WIDTH, HEIGHT, seed=5, brightest=200)
    ids = lambda states: sorted(s.track_id for s in states)  # noqa: E731
    first = ids(run(processor, frames[:6])[-1])
    assert run(processor, [empty, empty]) == [[], []]  # two frames without faces (< max_missed)
    assert ids(run(processor, frames[6:10])[-1]) == first  # same people, same tracks
    run(processor, [empty] * 4)  # longer than max_missed: the tracks end
    again = ids(run(processor, frames[10:16])[-1])
    assert len(again) == 2 and min(again) > max(first)
    assert processor.stats().people == 4


def test_settings_change_between_frames_from_another_thread(clip, predictor):
    processor = FrameProcessor(FaceAnalyzer(predictor, LIVE_DETECTOR), LiveSettings(detect_every=1))
    frame = clip[0][0]
    assert len(processor.process(frame)[1]) == 2
    processor.update_settings(min_score=0.95)  # stricter than any face in the clip scores
    assert processor.process(frame)[1] == []
    processor.update_settings(min_score=0.6, smoothing=1)
    assert len(processor.process(frame)[1]) == 2

    errors: list[BaseException] = []

    def stream():
        try:
            run(processor, [f for f, _ in clip[:12]])
        except BaseException as exc:  # surfaced below: a thread's exception is otherwise lost
            errors.append(exc)

    worker = threading.Thread(target=stream)
    worker.start()
    while worker.is_alive():
        processor.update_settings(smoothing=int(np.random.default_rng().integers(1, 20)))
        processor.stats()
    worker.join()
    assert errors == [] and processor.stats().frames == 15


def test_settings_are_validated():
    with pytest.raises(ValueError):
        LiveSettings(smoothing=0)
    with pytest.raises(ValueError):
        LiveSettings(min_score=1.5)
    with pytest.raises(ValueError):
        LiveSettings(detect_every=0)


def _face(x, y, size=100):
    from core.detect.face import Face

    return Face(x, y, size, size, 0.9, (x + 30.0, y + 40.0), (x + 70.0, y + 40.0))


def test_tracker_matches_by_overlap_not_by_order():
    tracker = IouTracker()
    first = tracker.update([_face(0, 0), _face(300, 0)], iou_threshold=0.3, max_missed=2)
    moved = tracker.update([_face(310, 5), _face(8, 3)], iou_threshold=0.3, max_missed=2)  # listed swapped
    assert [t.track_id for t in moved] == [first[1].track_id, first[0].track_id]
    jumped = tracker.update([_face(150, 200)], iou_threshold=0.3, max_missed=2)  # overlaps nobody
    assert jumped[0].track_id == 3 and len(tracker.tracks) == 3


def test_iou_values():
    overlaps = iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]]))
    np.testing.assert_allclose(overlaps, [[1 / 3, 1.0, 0.0]])
    assert iou(np.array([[0, 0, 0, 0]]), np.array([[0, 0, 0, 0]]))[0, 0] == 0.0  # empty boxes overlap nothing


# -- the Streamlit page, with the WebRTC component stubbed ----------------------------------------

def fake_webrtc(frames: list[np.ndarray]) -> tuple[types.ModuleType, list[dict], list]:
    """A stand-in `streamlit_webrtc` module: `webrtc_streamer` records its arguments and, on its
    first call, pushes `frames` through the page's callback as WebRTC would, keeping the output."""
    import av

    calls: list[dict] = []
    outputs: list = []

    def webrtc_streamer(**kwargs):
        if not calls:
            for frame in frames:
                outputs.append(kwargs["video_frame_callback"](av.VideoFrame.from_ndarray(frame, format="rgb24")))
        calls.append(kwargs)
        return types.SimpleNamespace(state=types.SimpleNamespace(playing=False, signalling=False))

    module = types.ModuleType("streamlit_webrtc")
    module.WebRtcMode = types.SimpleNamespace(SENDRECV="sendrecv", SENDONLY="sendonly", RECVONLY="recvonly")
    module.webrtc_streamer = webrtc_streamer
    return module, calls, outputs


@pytest.fixture
def page(clip, tiny_model_dir, monkeypatch):
    from streamlit.testing.v1 import AppTest

    module, calls, outputs = fake_webrtc([frame for frame, _ in clip[:8]])
    monkeypatch.setitem(sys.modules, "streamlit_webrtc", module)
    monkeypatch.setenv("AGE_GENDER_MODEL_DIR", str(tiny_model_dir))
    monkeypatch.delenv("WEBRTC_ICE_SERVERS", raising=False)
    app = AppTest.from_file(str(PAGE), default_timeout=60)
    app.calls, app.outputs = calls, outputs
    return app


def metric(app, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def test_page_streams_frames_through_the_processor_and_shows_faces_and_tally(page, clip):
    page.run()
    assert not page.exception, [e.value for e in page.exception]
    call = page.calls[0]
    assert call["mode"] == "sendrecv"
    assert call["rtc_configuration"] == {"iceServers": []}  # no internet STUN server by default
    assert call["media_stream_constraints"]["audio"] is False
    frames = [frame.to_ndarray(format="rgb24") for frame in page.outputs]
    assert len(frames) == 8 and all(f.shape == (480, 640, 3) for f in frames)
    assert all((f != clip[i][0]).any() for i, f in enumerate(frames))  # boxes drawn on every frame
    assert metric(page, "Faces in view") == "2" and metric(page, "People seen") == "2"
    faces, by_gender, by_band, seen = (table.value for table in page.dataframe)
    assert len(faces) == 2 and "confidence" in faces.columns
    assert by_gender["people"].sum() == 2 and by_band["people"].sum() == 2
    assert list(seen["person"]) == [1, 2] and seen["view"].str.startswith("data:image/png;base64,").all()


def test_page_settings_reach_the_processor(page):
    page.run()
    page.slider(key="live_smoothing").set_value(1)
    page.slider(key="live_min_score").set_value(0.8)
    page.checkbox(key="live_show_probabilities").uncheck()
    page.run()
    assert not page.exception
    settings = page.session_state["live_processor"].settings
    assert (settings.smoothing, settings.min_score) == (1, 0.8)
    assert "confidence" not in page.dataframe[0].value.columns


def test_page_passes_ice_servers_and_rejects_bad_ones(page):
    page.run()
    turn = '[{"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "p"}]'
    page.text_area(key="live_ice").set_value(turn).run()
    assert page.calls[-1]["rtc_configuration"]["iceServers"][0]["urls"] == ["turn:turn.example.org:3478"]
    page.text_area(key="live_ice").set_value('{"urls": "stun:x"').run()
    assert page.calls[-1]["rtc_configuration"] == {"iceServers": []}
    assert any("not valid JSON" in e.value for e in page.error)


def test_page_reports_a_failing_frame_and_keeps_the_video(page, monkeypatch, caplog):
    def broken(self, frame, show_probability=False):
        raise RuntimeError("model exploded in /srv/private")

    monkeypatch.setattr(FrameProcessor, "process", broken)
    page.run()
    assert [e.value for e in page.error] == ["Processing a frame failed; the details are in the server's log."]
    assert any("exploded" in str(record.exc_info[1]) for record in caplog.records if record.exc_info)  # logged
    assert len(page.outputs) == 8 and page.outputs[0].width == 640  # frames pass through unchanged


def test_stopping_the_stream_clears_faces_and_speed_but_keeps_the_people_until_reset(page):
    page.run()
    assert metric(page, "Faces in view") == "2"
    page.session_state["live_streaming"] = True  # as if the last run was streaming and STOP was pressed
    page.run()
    assert not page.exception
    assert not [m for m in page.metric if m.label in ("Faces in view", "Frames per second", "People seen")]
    assert any(i.value.startswith("Stopped.") for i in page.info)
    stats = page.session_state["live_processor"].stats()
    assert (stats.frames, stats.people, stats.faces) == (0, 2, ())
    assert list(page.dataframe[-1].value["person"]) == [1, 2]  # the session's people stay on the page
    page.button(key="live_reset").click().run()
    assert page.session_state["live_processor"].stats().people == 0
    assert any("Nobody yet" in c.value for c in page.caption)


def test_page_answer_settings_reach_the_processor(page):
    page.run()
    page.checkbox(key="live_check").check().run()
    page.number_input(key="live_threshold").set_value(21).run()
    page.slider(key="live_interval").set_value(0.9).run()
    assert not page.exception
    answers = page.session_state["live_processor"].analyzer.answers
    assert (answers.age_threshold, answers.interval, answers.min_quality) == (21, 0.9, "poor")
    faces = page.dataframe[0].value
    assert {"age range", "quality", "issues"} <= set(faces.columns)
