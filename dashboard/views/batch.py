"""Batch analysis: every face in many photos (uploads, zips or a folder on the server) through
`core.batch.engine.analyze_folder`, as a table, charts of the people found, and a CSV download."""
from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from core.batch.engine import analyze_folder
from core.batch.spreadsheet import to_safe_csv
from core.batch.totals import Totals
from core.imaging.files import IMAGE_EXTENSIONS, UNSUPPORTED_EXTENSIONS
from core.inference.calibration import AGE_CHECKS
from dashboard import access, capacity, charts, components, state, tables, uploads

UPLOAD, FOLDER = "Upload images or zip files", "A folder on the server"


def choose_input():
    """(uploaded files, None) or (None, folder path); stops the page until there is something.
    Server folders are offered only under the shared roots (`access`), and only when there are some."""
    roots = state.server_roots()
    modes = [UPLOAD, FOLDER] if roots else [UPLOAD]
    if st.radio("Images", modes, horizontal=True, label_visibility="collapsed", key="batch_mode") == UPLOAD:
        files = st.file_uploader(
            f"Images, or zip files of images (at most {components.upload_limit_mb()} MB in total)",
            accept_multiple_files=True, type=[ext.lstrip(".") for ext in IMAGE_EXTENSIONS + UNSUPPORTED_EXTENSIONS] + ["zip"],
            key="batch_files")
        components.refuse_oversized(files, "Upload fewer files at a time.")
        return (files, None) if files else (None, None)
    source = state.selected_source()
    suggestion = source.path if source.has_images and access.is_shared(source.path, roots, "folder") else ""
    folder = st.text_input("Folder on the server (sub-folders included)", value=suggestion, key="batch_folder").strip()
    if not folder:
        return None, None
    try:
        return None, state.shared_path(folder, "folder")
    except access.PathRefused as exc:
        st.error(f"Folder {exc}.")
        return None, None


def analyse(files, folder: Path | None, aligned: bool, small_faces: bool, answers):
    """Run the core batch analysis with a progress bar; uploads go through a temporary folder."""
    analyzer = components.analyzer_or_stop(None if aligned else "group photos" if small_faces else "photos")
    analyzer = analyzer.with_answers(answers)
    bar = st.progress(0.0, text="analysing...")
    progress = lambda done, total: bar.progress(done / total, text=f"analysing: {done:,} of {total:,} images")  # noqa: E731
    try:
        with capacity.analysis_slot(), tempfile.TemporaryDirectory(prefix="batch-") as temp:
            saved = uploads.Saved()
            if files:
                try:
                    saved = uploads.save_uploads(files, Path(temp))
                except uploads.UploadError as exc:
                    st.error(f"Upload refused: {exc}.")
                    st.stop()
            results = analyze_folder(folder or temp, analyzer, recursive=True, progress=progress)
            results["file"] = results["file"].map(lambda name: saved.names.get(name, name))  # the user's names
    finally:  # also when stopped or failed: no bar left standing
        bar.empty()
    what = f"folder `{folder}`" if folder else f"{len(files)} uploaded file(s)"
    return what, results, saved.rejected


def show(what: str, results, rejected) -> None:
    found = tables.people(results)
    st.caption(f"Data shown: the faces found in {what}.")
    totals = Totals()  # what the command line's summary counts, counted the same way
    totals.add(results.astype(object).where(results.notna(), None).to_dict("records"))
    row = st.columns(6)
    row[0].metric("Images", f"{sum(totals.files.values()):,}")
    row[1].metric("Faces found", f"{totals.faces:,}")
    row[2].metric("Poor quality", f"{totals.poor:,}",
                  help="Too small, blurry, dark, turned or unconfirmed (perhaps no face): see the quality_issues column.")
    row[3].metric("Uncertain", f"{totals.uncertain:,}",
                  help="Poor faces left out of the charts when poor faces are marked uncertain.")
    row[4].metric("Images without a face", f"{totals.files['no_face']:,}")
    row[5].metric("Unreadable", f"{totals.files['error']:,}")
    if totals.age_checks:
        st.info(f"Age check at {totals.age_threshold:g}: " + ", ".join(
            f"{totals.age_checks[name]:,} {name}" for name in AGE_CHECKS) + ". Over or under only when the whole "
            "age range is on one side; faces whose range straddles the threshold are uncertain.")
    if rejected:
        with st.expander(f"{len(rejected)} uploaded file(s) left out"):
            st.dataframe([{"file": name, "reason": reason} for name, reason in rejected], hide_index=True)
    st.download_button("Download the results (CSV)", to_safe_csv(results), file_name="faces.csv",
                       mime="text/csv", type="primary", key="batch_download")
    if not found.empty:
        left, middle, right = st.columns([2, 1, 2])
        left.plotly_chart(charts.histogram(found, "age", "Age of the people found", color="gender",
                                           x_title="predicted age (years)"), key="batch_ages")
        middle.plotly_chart(charts.share(found, "gender", "Gender"), key="batch_genders")
        right.plotly_chart(charts.pyramid(found, "Age-gender pyramid"), key="batch_pyramid")
    st.dataframe(tables.with_age_range(results), hide_index=True, column_config={
        "p_female": st.column_config.ProgressColumn("P(female)", min_value=0.0, max_value=1.0, format="%.2f"),
        "gender_confidence": components.FACE_COLUMNS["confidence"]})


st.title("Batch analysis")
files, folder = choose_input()
left, right = st.columns(2)
aligned = left.checkbox("Images are aligned face crops, like UTKFace (skip face detection)", key="batch_aligned")
small_faces = right.checkbox("Also look for small faces (group photos, slower)", key="batch_small_faces",
                             disabled=aligned)
answers = components.answer_settings("batch")
if st.button("Analyse", type="primary", disabled=not (files or folder), key="batch_run"):
    st.session_state["batch_results"] = analyse(files, folder, aligned, small_faces, answers)
if st.session_state.get("batch_results"):
    show(*st.session_state["batch_results"])
else:
    st.info(f"Upload photos or zip files (at most {components.upload_limit_mb()} MB in total: the browser refuses "
            "larger files, with a red mark next to them)"
            f"{', or give a folder on the server' if state.server_roots() else ''}, then press Analyse.")
