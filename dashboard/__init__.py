"""The Streamlit dashboard (`streamlit run dashboard/app.py`): pages over the `core` library."""
