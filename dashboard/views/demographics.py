"""Demographics: who is in a dataset by age, gender and race, with filters and sample faces."""
from __future__ import annotations

import streamlit as st

from core.labels import GENDERS, RACE_NAMES, UNKNOWN_GENDER
from dashboard import charts, components, state, tables

SAMPLE_FACES = 18

st.title("Demographics")
raw, source = components.dataset_table()
faces = tables.named(raw)

scope = f"{source.kind}:{source.path}"  # filters start afresh for each dataset
with st.container(border=True):
    left, right = st.columns(2)  # half a row each: at narrower columns the gender chips read "fema…"
    known = faces.loc[faces["age"] >= 0, "age"]
    youngest = int(known.min()) if len(known) else 0
    oldest = max(int(known.max()) if len(known) else 1, youngest + 1)
    ages = left.slider("Age range", youngest, oldest, (youngest, oldest), key=f"demo_ages:{scope}")
    offered = [*GENDERS, UNKNOWN_GENDER] if (faces["gender"] == UNKNOWN_GENDER).any() else list(GENDERS)
    genders = right.multiselect("Gender", offered, default=offered, key=f"demo_genders:{scope}")
    present = [race for race in RACE_NAMES if race in set(faces["race"])]
    races = st.multiselect("Race", present, default=present, key=f"demo_races:{scope}")
shown = tables.filter_faces(faces, ages, genders, races, keep_unknown_age=ages == (youngest, oldest))

columns = st.columns(4)
columns[0].metric("Faces shown", f"{len(shown):,}", help=f"of {len(faces):,} in the dataset")
if shown.empty:
    st.warning("No face matches these filters.")
    st.stop()
gendered, aged = shown[shown["gender"] != UNKNOWN_GENDER], shown[shown["age"] >= 0]
if len(gendered):
    columns[1].metric("Female", f"{(gendered['gender'] == 'female').mean():.1%}")
if len(aged):
    columns[2].metric("Median age", f"{aged['age'].median():.0f}")
    columns[3].metric("Age range", f"{aged['age'].min()}-{aged['age'].max()}")
if len(aged) < len(shown):
    st.caption(f"{len(shown) - len(aged):,} of these faces have no age label (a source that gives gender only): "
               "they are left out of the age charts.")

# Two charts a row at most: in a 800 px window three columns squeezed the donuts out of their frames.
left, right = st.columns(2)
left.plotly_chart(charts.histogram(aged, "age", "Age by gender", color="gender", x_title="age (years)"),
                  key="demo_age_histogram")
right.plotly_chart(charts.pyramid(aged[aged["gender"] != UNKNOWN_GENDER], "Age-gender pyramid"), key="demo_pyramid")
left, right = st.columns(2)
left.plotly_chart(charts.share(shown, "gender", "Gender"), key="demo_gender_share")
right.plotly_chart(charts.share(shown, "race", "Race"), key="demo_race_share")
grid = tables.counts(aged, "age_band", "race", tables.bands_within(ages), [r for r in present if r in races])
st.plotly_chart(charts.heatmap(grid, "Age band x race", "race", "age band"), key="demo_band_race")

st.subheader("Sample faces")
sample = shown.sample(n=min(SAMPLE_FACES, len(shown)), random_state=st.session_state.get("demo_seed", 0))
images = state.find_images(sample["file"], source)
sample = sample[sample["file"].isin(images.keys())]
if sample.empty:
    st.info("No image files for these faces on this machine: choose a dataset folder in the sidebar to see them.")
else:
    components.gallery([images[f] for f in sample["file"]],
                       [f"{row.age if row.age >= 0 else 'age ?'} {row.gender}, {row.race}" for row in sample.itertuples()])
    if st.button("Other faces", key="demo_shuffle"):
        st.session_state["demo_seed"] = st.session_state.get("demo_seed", 0) + 1
        st.rerun()
