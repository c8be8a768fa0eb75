"""Video: a recorded video (uploaded, or a file under the shared folders) into its people, each
counted once with age and gender, through `core.video.recorded.analyse_video`, the job behind
`python -m core video`. Shows who was in view when, the people's ages and genders (people, not
frames), each person's best view, the annotated video playing in the page, and the downloads
the command line writes (people.csv, faces.csv, the annotated MP4).

Bounded: uploads by the server's upload cap, videos by MAX_MINUTES and MAX_PIXELS (longer or
larger ones belong to the command line, which streams any length). Each session's files live in a
temporary folder that goes with the session.
"""
from __future__ import annotations

import shutil
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from core.video.reader import VideoError, VideoInfo
from core.video.recorded import VideoOutputs, VideoRun, VideoSettings, analyse_video, detector_use
from dashboard import access, capacity, charts, components, people, state

UPLOAD, SERVER = "Upload a video", "A video on the server"
VIDEO_TYPES = ("mp4", "mov", "m4v", "mkv", "webm", "avi")
MAX_MINUTES = 10  # longer videos: `python -m core video`, which streams any length
MAX_PIXELS = 1920 * 1080  # larger frames: the command line (a 4K frame is 25 MB of RGB)
DETECTORS = {  # what the page offers -> (detector, small faces)
    "Most videos: faces from about 35 px (YuNet)": ("yunet", False),
    "Far camera: faces from about 25 px (YuNet at full size, slower)": ("yunet", True),
    "Near faces only: webcam, interview (BlazeFace, fastest)": ("blazeface", False),
}
PROGRESS_EVERY_S = 0.25


class Folder:
    """A temporary folder deleted when this object is (the session's state is dropped, or a new
    analysis replaces it)."""

    def __init__(self):
        self.path = Path(tempfile.mkdtemp(prefix="agegender-video-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.path, ignore_errors=True)

    def remove(self) -> None:
        self._cleanup()


@dataclass
class Analysed:
    name: str
    run: VideoRun
    outputs: VideoOutputs
    folder: Folder


def choose_video():
    """(uploaded file, None) or (None, server path); (None, None) until there is one."""
    roots = state.server_roots()
    modes = [UPLOAD, SERVER] if roots else [UPLOAD]
    if st.radio("Video", modes, horizontal=True, label_visibility="collapsed", key="video_mode") == UPLOAD:
        upload = st.file_uploader(f"Video: {', '.join(VIDEO_TYPES).upper()} (at most {components.upload_limit_mb()} MB "
                                  f"and {MAX_MINUTES} minutes)", type=list(VIDEO_TYPES), key="video_upload")
        components.refuse_oversized(upload, "Cut the video shorter, or use `python -m core video` on it.")
        return upload, None
    typed = st.text_input("Video file on the server", key="video_path").strip()
    if not typed:
        return None, None
    try:
        path = state.shared_path(typed, "file")
    except access.PathRefused as exc:
        st.error(f"Video {exc}.")
        return None, None
    if path.suffix.lower().lstrip(".") not in VIDEO_TYPES:
        st.error(f"{path.name} is not one of the video types this page reads ({', '.join(VIDEO_TYPES)}).")
        return None, None
    return None, path


def refuse_too_big(info: VideoInfo) -> None:
    """`analyse_video`'s check before the first frame: the page's bounds."""
    if info.duration_s and info.duration_s > MAX_MINUTES * 60:
        raise VideoError(f"{Path(info.path).name} lasts {info.duration_s / 60:.1f} minutes; this page analyses up to "
                         f"{MAX_MINUTES}. Use `python -m core video` for longer videos")
    if info.width * info.height > MAX_PIXELS:
        raise VideoError(f"{Path(info.path).name} is {info.width}x{info.height}; this page analyses up to 1920x1080. "
                         "Use `python -m core video` for larger videos")


def analyse(upload, server_path: Path | None, choice: str, every: int, answers) -> Analysed | None:
    """Run the job as one of the server's analyses (like a photo or a batch: a session runs one at
    a time, the server a few), with a progress bar; the error in words (and None) when the video
    cannot be read."""
    with capacity.analysis_slot():
        return _analyse(upload, server_path, choice, every, answers)


def _analyse(upload, server_path: Path | None, choice: str, every: int, answers) -> Analysed | None:
    previous = st.session_state.pop("video_results", None)
    if previous is not None:
        previous.folder.remove()
    detector, small_faces = DETECTORS[choice]
    analyzer = components.analyzer_or_stop(detector_use(detector, small_faces)).with_answers(answers)
    folder = Folder()
    if upload is not None:
        name = Path(upload.name).name
        source = folder.path / f"input{Path(name).suffix.lower()}"
        source.write_bytes(upload.getvalue())
    else:
        name, source = server_path.name, server_path
    outputs = VideoOutputs(folder.path / "people.csv", folder.path / "faces.csv", folder.path / "annotated.mp4")
    bar = st.progress(0.0, text="opening the video...")
    started, shown = time.monotonic(), [0.0]

    def progress(done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - shown[0] < PROGRESS_EVERY_S:
            return
        shown[0] = now
        rate = done / max(now - started, 1e-6)
        if total:
            left = max(total - done, 0) / max(rate, 1e-6)
            bar.progress(min(done / total, 1.0), text=f"analysing: frame {done:,} of {total:,}, {rate:.0f} frames/s, "
                                                      f"about {left:.0f} s left")
        else:
            bar.progress(0.0, text=f"analysing: frame {done:,}, {rate:.0f} frames/s")

    try:
        run = analyse_video(source, analyzer, outputs, VideoSettings(every=every), progress, thumbnails=True,
                            on_open=refuse_too_big)
    except VideoError as exc:
        bar.empty()
        folder.remove()
        st.error(f"Cannot analyse {name}: {exc}.")
        return None
    bar.empty()
    if upload is not None:
        source.unlink(missing_ok=True)  # the upload is not needed any more; the results are
    return Analysed(name, run, outputs, folder)


def show(result: Analysed) -> None:
    run, found = result.run, result.run.people
    seconds = run.frames / run.info.fps
    st.caption(f"Data shown: the people in {result.name} ({seconds:.1f} s, {run.frames:,} frames at "
               f"{run.info.width}x{run.info.height}), analysed at {run.fps:.0f} frames per second.")
    row = st.columns(4)
    row[0].metric("People", f"{len(found):,}")
    row[1].metric("Women", f"{sum(p.gender == 'female' for p in found):,}")
    row[2].metric("Men", f"{sum(p.gender == 'male' for p in found):,}")
    row[3].metric("Poor views only", f"{sum(p.quality == 'poor' for p in found):,}",
                  help="People whose face was never seen well (small, blurry, dark or turned): their answers are "
                       "less reliable.")
    downloads = st.columns(3)
    downloads[0].download_button("people.csv", people.csv_text(found), file_name="people.csv", mime="text/csv",
                                 type="primary", key="video_download_people")
    downloads[1].download_button("faces.csv (every face, every frame)", result.outputs.faces.read_bytes(),
                                 file_name="faces.csv", mime="text/csv", key="video_download_faces")
    downloads[2].download_button("Annotated video (MP4)", result.outputs.annotated.read_bytes(),
                                 file_name=f"{Path(result.name).stem}-annotated.mp4", mime="video/mp4",
                                 key="video_download_video")
    left, right = st.columns([3, 2])
    left.video(str(result.outputs.annotated), format="video/mp4")
    if not found:
        right.info("No people found in this video. Faces must be roughly frontal; for a far camera choose "
                   "\"Far camera\" above.")
        return
    right.plotly_chart(charts.presence(people.spans_table(run.spans, found), "Who was in view when"),
                       key="video_presence")
    people.show_table(people.table(found, run.thumbnails), key="video_people")
    table = people.table(found)
    ages, genders = st.columns([2, 1])
    ages.plotly_chart(charts.histogram(table, "age", "Age of the people", color="gender",
                                       x_title="predicted age (years)"), key="video_ages")
    genders.plotly_chart(charts.share(table, "gender", "Gender of the people"), key="video_genders")


st.title("Video")
st.caption("Every person in a recorded video, counted once (a person hidden for a moment stays one person), with "
           "their age and gender aggregated over their good views.")
upload, server_path = choose_video()
left, right = st.columns([2, 1])
choice = left.radio("Faces", list(DETECTORS), key="video_detector")
every = right.number_input("Detect faces on every n-th frame", 1, 10, 1, key="video_every",
                           help="1 analyses every frame. 2-3 is faster; people walking fast may then be counted twice.")
answers = components.answer_settings("video")
if st.button("Analyse", type="primary", disabled=upload is None and server_path is None, key="video_run"):
    analysed = analyse(upload, server_path, choice, int(every), answers)
    if analysed is not None:
        st.session_state["video_results"] = analysed
if st.session_state.get("video_results") is not None:
    show(st.session_state["video_results"])
else:
    st.info(f"Upload a video (at most {components.upload_limit_mb()} MB and {MAX_MINUTES} minutes)"
            f"{', or name one on the server' if state.server_roots() else ''}, then press Analyse.")
