"""How much the server analyses at once, so that visitors cannot add up its memory and cores.

An analysis (a photo, a batch of uploads or a folder, a fresh evaluation) holds decoded images,
crops and the model's threads; served to others, a few visitors pressing Analyse together (or one
opening many tabs) would multiply that. `analysis_slot` bounds it: one analysis at a time per
session (a browser tab) and AGE_GENDER_MAX_ANALYSES (default 2) on the whole server; a visitor
over the cap waits, told why, for up to WAIT_SECONDS, then is asked to try again. When an
analysis ends, the memory its images took is handed back to the system
(`core.imaging.files.release_memory`), so the server returns to its idle size.
"""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import streamlit as st

from core.imaging.files import release_memory

MAX_ANALYSES_ENV = "AGE_GENDER_MAX_ANALYSES"
WAIT_SECONDS = 120.0


class Slots:
    """The server's places for analyses: a counter under a lock, so pages can say how full it is."""

    def __init__(self, size: int):
        self.size = size
        self._free = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self.busy = 0

    def take(self, timeout: float) -> bool:
        if not self._free.acquire(timeout=timeout):
            return False
        with self._lock:
            self.busy += 1
        return True

    def give(self) -> None:
        with self._lock:
            self.busy -= 1
        self._free.release()


def max_analyses() -> int:
    """Analyses at once on this server: $AGE_GENDER_MAX_ANALYSES, default 2 (one per core here)."""
    return max(1, int(os.environ.get(MAX_ANALYSES_ENV) or 2))


@st.cache_resource
def server_slots() -> Slots:
    """One for the server process, shared by every session."""
    return Slots(max_analyses())


def _refuse(reason: str) -> None:
    st.warning(f"Not analysed: {reason}.")
    st.stop()


@contextmanager
def analysis_slot() -> Iterator[None]:
    """Run the block as one of the server's analyses (see the module's doc); when this session
    already runs one, or the server stayed full for WAIT_SECONDS, the page says so and stops."""
    mine = st.session_state.setdefault("analysis_lock", threading.Lock())
    if not mine.acquire(blocking=False):
        _refuse("an analysis of this session is still running: wait for it to end, then try again")
    slots = server_slots()
    try:
        if not slots.take(timeout=0):
            with st.spinner(f"Waiting for a free place: {slots.busy} analyses are running on this server, the most "
                            f"it runs at once (set by {MAX_ANALYSES_ENV})..."):
                started = time.monotonic()
                taken = slots.take(timeout=WAIT_SECONDS)
            if not taken:
                _refuse(f"the server stayed busy for {time.monotonic() - started:.0f} s ({slots.size} analyses at "
                        "once): try again in a moment")
        try:
            yield
        finally:
            slots.give()
            release_memory()
    finally:
        mine.release()
