"""The product's front door: `streamlit run dashboard/app.py`.

This entry script is the frame around every page: it makes `core` and `dashboard` importable,
draws the sidebar's global choices, routes to the page files with `st.navigation`, and puts our
own words in place of Streamlit's error box when a page fails (`components.page_failed`).
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if "tensorflow" not in sys.modules:
    # The live page's streamlit_webrtc needs its pylibsrtp loaded before TensorFlow (their bundled
    # OpenSSL builds clash the other way round: a segfault). pylibsrtp alone takes 7 ms, where all
    # of streamlit_webrtc takes 0.4 s that the first page would wait for; the live page imports the rest.
    try:
        import pylibsrtp  # noqa: F401
    except ImportError:
        pass

import streamlit as st  # noqa: E402

from dashboard import components, sidebar  # noqa: E402

# Page files live in views/, not pages/: a pages/ folder next to this script makes Streamlit
# start in its legacy multipage mode, where a deep link such as /photo runs that file alone,
# without this script (no sidebar, no navigation) until someone opens the home page.

st.set_page_config(page_title="Age & gender", page_icon=":material/face:", layout="wide")
navigation = st.navigation({
    "Data": [st.Page("views/demographics.py", title="Demographics", icon=":material/groups:", default=True)],
    "Model": [st.Page("views/training.py", title="Training", icon=":material/model_training:"),
              st.Page("views/evaluation.py", title="Evaluation", icon=":material/fact_check:")],
    "Analyse": [st.Page("views/photo.py", title="Single photo", icon=":material/photo_camera:"),
                st.Page("views/batch.py", title="Batch analysis", icon=":material/photo_library:"),
                st.Page("views/video.py", title="Video", icon=":material/movie:"),
                st.Page("views/live.py", title="Live camera", icon=":material/videocam:", url_path="live")],
})
sidebar.render()
try:
    navigation.run()
except Exception as exc:  # noqa: BLE001 - any failure of a page: our words there, the details in the server's log
    components.page_failed(exc)
