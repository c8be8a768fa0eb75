"""Live camera page: the browser streams its camera over WebRTC, every face comes back boxed and
labelled with age and gender, and the page shows who is in view, a running tally and the table of
people seen this session (people.csv's columns, as the Video page and `python -m core video`
write them), with a download; stopping the camera keeps the people, "Reset people" forgets them.

Works as a page of the dashboard (st.navigation) and alone: `streamlit run dashboard/views/live.py`.
The per-frame work is `core.video.live.FrameProcessor` (the same detector, alignment and Predictor as
batch analysis); this file is only the UI around it. Threads: `webrtc_streamer` calls the frame
callback on its own worker thread; the callback hands results to the script thread through a
queue, and the script loops, showing them, while the stream plays.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import sys
import time
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# pylibsrtp (under streamlit_webrtc) must be loaded before TensorFlow: it bundles OpenSSL, and once
# TensorFlow has loaded its own copy globally, importing pylibsrtp crashes the whole server with a
# segmentation fault. app.py loads it first; refuse politely if something went round it.
if "pylibsrtp" not in sys.modules and "tensorflow" in sys.modules:
    st.error("The live camera cannot start in this server process: TensorFlow was loaded before "
             "streamlit-webrtc's pylibsrtp. The app's entry script must `import pylibsrtp` before "
             "anything that imports TensorFlow; restart the app after fixing that.")
    st.stop()

import av  # noqa: E402
from streamlit_webrtc import WebRtcMode, webrtc_streamer  # noqa: E402

from core.runs import ModelError  # noqa: E402
from core.video.live import FrameProcessor, LiveStats  # noqa: E402
from dashboard import components, people, state  # noqa: E402

logger = logging.getLogger(__name__)

ICE_SERVERS_ENV = "WEBRTC_ICE_SERVERS"  # JSON list of RTCIceServer dicts; "[]" on localhost
REFRESH_SECONDS = 0.5  # how often the stats panel redraws while streaming
NO_FRAMES_WARNING_SECONDS = 8.0  # streaming or connecting this long without a frame = trouble
TRANSLATIONS = {
    "device_access_denied": "Camera access was denied. Allow the camera for this site (icon in the "
                            "address bar), then press START again.",
    "device_not_available": "No camera was found, or another program is using it.",
    "media_api_not_available": "This browser cannot open a camera on this page: open the app over "
                               "https, or as http://localhost on the machine that runs it.",
    "device_ask_permission": "Please allow access to your camera.",
}


def parse_ice_servers(text: str) -> list[dict]:
    """ICE servers from JSON text, e.g. '[{"urls": ["turn:host:3478"], "username": "u",
    "credential": "p"}]'; raises ValueError with a message fit for the user."""
    try:
        servers = json.loads(text or "[]")
    except json.JSONDecodeError as exc:
        raise ValueError(f"ICE servers are not valid JSON ({exc.msg} at character {exc.pos})") from exc
    if not isinstance(servers, list):
        raise ValueError("ICE servers must be a JSON list, e.g. [] or [{\"urls\": \"stun:host:3478\"}]")
    for server in servers:
        urls = server.get("urls") if isinstance(server, dict) else None
        if not (isinstance(urls, str) or (isinstance(urls, list) and urls and all(isinstance(u, str) for u in urls))):
            raise ValueError(f"each ICE server needs \"urls\" (a string or a list of strings): {server!r}")
    return servers


def session_objects(analyzer) -> tuple[FrameProcessor, queue.Queue]:
    """This viewer's processor (its own tracks and tally) and result queue, kept across reruns;
    the detector and model inside are the server-wide cached ones, swapped in when reloaded, and
    so are the answer settings when the sidebar changes them."""
    session = st.session_state
    if session.get("live_processor") is None:
        session.live_processor = FrameProcessor(analyzer)
        session.live_results = queue.Queue(maxsize=1)
        session.live_latest = None
    elif (session.live_processor.analyzer.predictor is not analyzer.predictor
          or session.live_processor.analyzer.detector is not analyzer.detector
          or session.live_processor.analyzer.answers != analyzer.answers):
        session.live_processor.use_analyzer(analyzer)
    return session.live_processor, session.live_results


def offer(results: queue.Queue, item) -> None:
    """Put the newest item, dropping an unread older one: the page only wants the latest."""
    try:
        results.get_nowait()
    except queue.Empty:
        pass
    try:
        results.put_nowait(item)
    except queue.Full:  # the page thread never puts, so only a racing callback lands here
        pass


def make_callback(processor: FrameProcessor, results: queue.Queue, show_probability: bool):
    """The WebRTC frame callback; runs on the streamer's worker thread, never touches st.*."""
    def callback(frame: av.VideoFrame) -> av.VideoFrame:
        try:
            annotated, _ = processor.process(frame.to_ndarray(format="rgb24"), show_probability)
        except Exception as exc:  # keep the video flowing; the page shows what went wrong
            logger.exception("live frame processing failed")
            offer(results, (time.monotonic(), exc))
            return frame
        offer(results, (time.monotonic(), processor.stats()))
        return av.VideoFrame.from_ndarray(annotated, format="rgb24")

    return callback


SMALL_FACES_HELP = ("Finds faces down to about 48 px in the 640x480 picture (people a few metres away) with YuNet, "
                    "at several times the CPU per frame. Off: BlazeFace, for faces of about 100 px and more "
                    "(someone in front of the camera).")


def small_faces() -> bool:
    """The detector choice, read before the analyzer is built (its widget is in the sidebar)."""
    st.sidebar.header("Live camera")
    return st.sidebar.checkbox("Small faces (people further away)", False, key="live_small_faces", help=SMALL_FACES_HELP)


def sidebar(processor: FrameProcessor) -> tuple[bool, list[dict]]:
    """Settings widgets (the answer settings and the detector are read first); returns (show
    probabilities, ICE servers)."""
    with st.sidebar:
        min_score = st.slider("Detection confidence", 0.3, 0.95, processor.settings.min_score, 0.05,
                              key="live_min_score", help="Faces the detector is less sure about are ignored.")
        smoothing = st.slider("Smoothing", 1, 30, processor.settings.smoothing, key="live_smoothing",
                              help="How many recent predictions of each face are averaged (1 = none). "
                                   "More = steadier labels, slower to react.")
        show_probabilities = st.checkbox("Show gender probability", True, key="live_show_probabilities",
                                         help="How sure the model is of each face's gender (50% = unsure).")
        processor.update_settings(min_score=min_score, smoothing=smoothing)
        if st.button("Reset people", key="live_reset",
                     help="Forget the people seen this session: the table and the tally start from zero."):
            processor.reset()
            st.session_state.live_latest = None
        with st.expander("Connection (ICE servers)"):
            text = st.text_area("ICE servers (JSON)", os.environ.get(ICE_SERVERS_ENV, "[]"), key="live_ice",
                                help="Empty list = direct connection, enough on localhost or a LAN. "
                                     "Beyond that add a TURN server.")
            try:
                ice_servers = parse_ice_servers(text)
            except ValueError as exc:
                st.error(f"{exc}. Using no ICE servers.")
                ice_servers = []
    return show_probabilities, ice_servers


def connection_notice(stream, waited: float) -> None:
    """Say clearly when the camera or the connection is not delivering frames."""
    if waited > NO_FRAMES_WARNING_SECONDS:
        st.warning(f"No video frames for {waited:.0f} s. The connection may have failed: "
                   "on another machine than the server a TURN server is usually needed "
                   "(sidebar, Connection), and the camera must be allowed in the browser.")
    elif stream.signalling and not stream.playing:
        st.info("Connecting to the camera...")


def show_stats(stats: LiveStats, show_probabilities: bool) -> None:
    faces, fps, frame_ms, people = st.columns(4)
    faces.metric("Faces in view", len(stats.faces))
    fps.metric("Frames per second", f"{stats.fps:.1f}")
    frame_ms.metric("Processing ms/frame", f"{stats.frame_ms:.0f}",
                    help="Mean time to analyse one frame. Above ~40 ms the video drops frames.")
    people.metric("People seen", stats.people)
    ordered = sorted(stats.faces, key=lambda s: s.track_id)
    rows = [{**row, "age band": s.age_band} for row, s in zip(components.face_table([s.result for s in ordered]), ordered)]
    if not show_probabilities:
        rows = [{k: v for k, v in row.items() if k not in ("confidence", "p_female")} for row in rows]
    st.subheader("In view now")
    if rows:
        st.dataframe(rows, hide_index=True, column_config=components.FACE_COLUMNS)
    else:
        st.caption("No faces in view.")
    st.subheader("Tally of people seen")
    by_gender, by_band = st.columns(2)
    by_gender.dataframe([{"gender": g, "people": n} for g, n in stats.by_gender.items()], hide_index=True)
    by_band.dataframe([{"age band": b, "people": n} for b, n in stats.by_age_band.items()], hide_index=True)


def show_people(processor: FrameProcessor) -> None:
    """The session's people, with their best view (kept when the camera stops, until reset)."""
    seen = processor.people()
    st.subheader("People this session")
    if seen:
        people.show_table(people.table(seen, {p.person: processor.thumbnail(p.person) for p in seen}), key=None)
    else:
        st.caption("Nobody yet: a face becomes a person once it has been found on a few frames.")


def take_latest(results: queue.Queue) -> float | None:
    """Move the callback's newest result into session state; when it arrived, or None."""
    try:
        received_at, st.session_state.live_latest = results.get_nowait()
    except queue.Empty:
        return None
    return received_at


def render(result, processor: FrameProcessor, show_probabilities: bool, stopped: bool = False) -> None:
    if isinstance(result, Exception):
        st.error("Processing a frame failed; the details are in the server's log.")
    elif result is not None:
        show_stats(result, show_probabilities)
    elif stopped:
        st.info("Stopped. Press START to look again: the people seen so far stay in the table below until you "
                "press Reset people.")
    else:
        st.caption("Press START and allow the camera: faces get a numbered box with age and gender.")
    show_people(processor)


def forget_stream(processor: FrameProcessor, results: queue.Queue) -> None:
    """The stream stopped: drop its faces in view and speed, so the page shows nothing stale; the
    people seen stay (`FrameProcessor.end_stream`)."""
    processor.end_stream()
    while take_latest(results) is not None:
        pass
    st.session_state.live_latest = None


def follow_stream(ctx, processor: FrameProcessor, results: queue.Queue, show_probabilities: bool) -> None:
    """Redraw the panel from the callback's results until the stream stops.

    A loop inside this script run, not a timed fragment: Streamlit cleans up after every run
    (a full garbage collection), which would stall the video if it happened twice a second.
    Stopping the stream or touching a widget reruns the page, which ends this loop."""
    panel = st.empty()
    last_frame = time.monotonic()
    while True:
        last_frame = take_latest(results) or last_frame
        with panel.container():
            connection_notice(ctx.state, time.monotonic() - last_frame)
            render(st.session_state.live_latest, processor, show_probabilities)
        time.sleep(REFRESH_SECONDS)


def main() -> None:
    st.title("Live camera")
    with st.sidebar.expander("Answers", expanded=True):
        answers = components.answer_settings("live", stacked=True)
    try:
        use = "live, small faces" if small_faces() else "live"
        analyzer = state.get_analyzer(state.selected_model(), use).with_answers(answers)
    except ModelError as exc:
        st.error(f"No model to run: {exc}. Pick a trained run in the sidebar, train one (see README) "
                 "or set AGE_GENDER_MODEL_DIR.")
        st.stop()
    processor, results = session_objects(analyzer)
    show_probabilities, ice_servers = sidebar(processor)
    ctx = webrtc_streamer(
        key="live-camera",
        mode=WebRtcMode.SENDRECV,
        rtc_configuration={"iceServers": ice_servers},
        media_stream_constraints={"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}, "audio": False},
        video_frame_callback=make_callback(processor, results, show_probabilities),
        async_processing=True,
        translations=TRANSLATIONS,
    )
    # once per run, outside the redrawn panel; the file is made when clicked, so it is current
    st.download_button("Download the people (CSV)", lambda: people.csv_text(processor.people()),
                       file_name="people.csv", mime="text/csv", on_click="ignore", key="live_download",
                       help="people.csv as `python -m core video` writes it: one row per person seen this session.")
    if ctx.state.playing or ctx.state.signalling:
        st.session_state.live_streaming = True
        follow_stream(ctx, processor, results, show_probabilities)
    # Otherwise the panel is one container, in the place the streaming run's panel takes: a
    # stopped page's elements left below it would stay on screen, greyed, the whole stream long.
    elif st.session_state.pop("live_streaming", False):  # the previous run was streaming: STOP
        forget_stream(processor, results)
        with st.container():
            render(None, processor, show_probabilities, stopped=True)
    else:
        take_latest(results)
        with st.container():
            render(st.session_state.live_latest, processor, show_probabilities)


main()
