"""Single photo: every face in one picture, boxed and labelled with age and gender, and the
model's probabilities per face."""
from __future__ import annotations

import streamlit as st

from core.batch import analyze_images, annotate
from core.images import IMAGE_EXTENSIONS, ImageError, load_image
from dashboard import components, state

UPLOAD, CAMERA = "Upload a photo", "Take a photo"

st.title("Single photo")
st.caption("Faces are found by the BlazeFace detector, aligned like the training crops, and read by the "
           f"model selected in the sidebar (`{state.display_name(state.selected_model())}`).")
mode = st.radio("Photo", [UPLOAD, CAMERA], horizontal=True, label_visibility="collapsed", key="photo_mode")
if mode == UPLOAD:
    photo = st.file_uploader("Photo", type=[ext.lstrip(".") for ext in IMAGE_EXTENSIONS], key="photo_upload")
else:
    photo = st.camera_input("Camera", key="photo_camera")
small_faces = st.checkbox("Also look for small faces (group photos, slower)", key="photo_small_faces")
if photo is None:
    st.info("Upload a photo or take one with your camera: each face gets a box with its age and gender.")
    st.stop()

try:
    image = load_image(photo.getvalue())
except ImageError as exc:
    st.error(f"Cannot use {photo.name}: {exc}")
    st.stop()
predictor = components.predictor_or_stop()
rows = analyze_images([(photo.name, image)], predictor, state.get_detector(small_faces))
faces = rows[rows["status"] == "ok"].reset_index(drop=True)
if (rows["status"] == "error").any():
    st.error(f"Cannot analyse {photo.name}: {rows['error'].iloc[0]}")
    st.stop()

left, right = st.columns([1, 1])
left.image(annotate(image, faces), caption=f"{photo.name}: {len(faces)} face(s)", width="stretch")
with right:
    st.metric("Faces found", len(faces))
    if faces.empty:
        st.warning("No face found. Faces should be roughly frontal and not too small; "
                   "try the small-faces option for group photos.")
        st.stop()
    table = faces.assign(face=faces["face"] + 1, p_male=1 - faces["p_female"])
    st.dataframe(table[["face", "gender", "age", "p_female", "p_male", "det_score"]], hide_index=True, column_config={
        "age": st.column_config.NumberColumn("age", format="%.0f"),
        "p_female": st.column_config.ProgressColumn("P(female)", min_value=0.0, max_value=1.0, format="%.2f"),
        "p_male": st.column_config.ProgressColumn("P(male)", min_value=0.0, max_value=1.0, format="%.2f"),
        "det_score": st.column_config.NumberColumn("detection score", format="%.2f")})
    components.gallery([image[max(0, r.y):r.y + r.h, max(0, r.x):r.x + r.w] for r in faces.itertuples()],
                       [f"{r.face + 1}: {r.gender}, {r.age:.0f}" for r in faces.itertuples()], columns=4)
