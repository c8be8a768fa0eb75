"""Single photo: every face in one picture, boxed and numbered, with age and its calibrated range,
gender and its confidence, and each face's quality (the same pipeline and numbers as the CLI and
batch analysis)."""
from __future__ import annotations

import streamlit as st

from core.analysis.drawing import draw_faces
from core.analysis.pipeline import load_photo
from core.imaging.files import IMAGE_EXTENSIONS, UNSUPPORTED_EXTENSIONS, ImageError
from dashboard import capacity, components, state

UPLOAD, CAMERA = "Upload a photo", "Take a photo"

st.title("Single photo")
st.caption("Faces are found by the face detector, aligned like the training crops, and read by the "
           f"model selected in the sidebar (`{state.display_name(state.selected_model())}`).")
mode = st.radio("Photo", [UPLOAD, CAMERA], horizontal=True, label_visibility="collapsed", key="photo_mode")
if mode == UPLOAD:
    photo = st.file_uploader(f"Photo (at most {components.upload_limit_mb()} MB)",
                             type=[ext.lstrip(".") for ext in IMAGE_EXTENSIONS + UNSUPPORTED_EXTENSIONS], key="photo_upload")
else:
    photo = st.camera_input("Camera", key="photo_camera")
small_faces = st.checkbox("Also look for small faces (group photos, slower)", key="photo_small_faces")
answers = components.answer_settings("photo")
if photo is None:
    st.info("Upload a photo or take one with your camera: each face gets a numbered box with its age and gender. "
            f"Photos over {components.upload_limit_mb()} MB are refused by the browser (a red mark next to the file).")
    st.stop()
components.refuse_oversized(photo, "Use a smaller copy of the photo.")

analyzer = components.analyzer_or_stop("group photos" if small_faces else "photos").with_answers(answers)
with capacity.analysis_slot():
    try:
        image, scale = load_photo(photo.getvalue())
    except ImageError as exc:
        st.error(f"Cannot use {photo.name}: {exc}")
        st.stop()
    faces = analyzer.analyze(image, scale=scale)

left, right = st.columns([1, 1])
left.image(draw_faces(image, faces, scale=1 / scale), caption=f"{photo.name}: {len(faces)} face(s)", width="stretch")
with right:
    st.metric("Faces found", len(faces))
    if not faces:
        st.warning("No face found. Faces should be roughly frontal and not too small; "
                   "try the small-faces option for group photos.")
        st.stop()
    poor = sum(f.quality is not None and f.quality.grade == "poor" for f in faces)
    if poor:
        st.warning(f"{poor} face(s) of poor quality (too small, blurry, dark, turned, or not confirmed as a face): their answers are less "
                   "reliable than the intervals say.")
    table = [{**row, "det_score": f.det_score} for row, f in zip(components.face_table(faces), faces)]
    st.dataframe(table, hide_index=True, column_config={
        **components.FACE_COLUMNS, "det_score": st.column_config.NumberColumn("detection score", format="%.2f")})
    if faces[0].age_low is not None:
        st.caption(f"Age range: holds the true age for {answers.interval:.0%} of faces, calibrated on the model's "
                   "validation faces.")
    crops = [image[max(0, round(f.y / scale)):round((f.y + f.h) / scale), max(0, round(f.x / scale)):round((f.x + f.w) / scale)]
             for f in faces]
    components.gallery(crops, [f.label() for f in faces], columns=2)
