"""The server-path policy (dashboard/access.py) and the shipped Streamlit settings, without Streamlit."""
from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from core.config import PROJECT_ROOT
from dashboard import access

CONFIG = PROJECT_ROOT / ".streamlit" / "config.toml"


@pytest.fixture
def shared(tmp_path) -> Path:
    """A shared root with a folder and a file in it, next to a private folder."""
    root = tmp_path / "shared"
    (root / "photos").mkdir(parents=True)
    (root / "photos" / "a.jpg").write_bytes(b"x")
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "secret.jpg").write_bytes(b"x")
    return root


def refusal(typed, roots, kind="any", hidden=()) -> str:
    with pytest.raises(access.PathRefused) as caught:
        access.server_path(typed, roots, kind, hidden)
    return str(caught.value)


def test_paths_under_a_root_are_accepted_resolved(shared):
    assert access.server_path(shared / "photos", [shared], "folder") == shared / "photos"
    assert access.server_path(shared / "photos" / ".." / "photos" / "a.jpg", [shared], "file") == shared / "photos" / "a.jpg"


def test_missing_forbidden_and_outside_paths_get_one_message(shared, tmp_path):
    (tmp_path / "link").symlink_to(tmp_path / "private")
    (shared / "escape").symlink_to(tmp_path / "private")
    locked = shared / "locked"
    locked.mkdir(mode=0)
    messages = {
        refusal(shared / "missing", [shared]),
        refusal(shared / "photos" / "a.jpg", [shared], "folder"),  # a file where a folder is wanted
        refusal(shared / ".." / "private", [shared]),
        refusal(shared / "escape" / "secret.jpg", [shared]),  # a link out of the root
        refusal("/etc/shadow", [shared]),
        refusal("/etc/passwd", [shared]),
        refusal("bad\0name", [shared]),
        refusal("~no-such-user/photos", [shared]),
    }
    if os.geteuid() != 0:  # root reads everything
        messages.add(refusal(locked, [shared]))
    assert messages == {f"{access.REFUSED} ({shared})"}  # the same words, naming what is shared


def test_relative_paths_are_read_from_the_project_folder():
    assert access.server_path("core", [PROJECT_ROOT], "folder") == PROJECT_ROOT / "core"


def test_roots_default_to_the_project_and_datasets_on_localhost_only(tmp_path):
    defaults = tuple(Path(os.path.realpath(p)) for p in access.default_roots())
    assert access.server_roots(None, "localhost") == defaults
    assert access.server_roots(None, "127.0.0.1") == defaults
    assert access.server_roots(None, None) == ()  # all interfaces: uploads only
    assert access.server_roots(None, "0.0.0.0") == ()
    assert access.server_roots("", "localhost") == ()  # set but empty: none, even on localhost
    assert access.server_roots(f"{tmp_path}{os.pathsep}{tmp_path}/a/..", None) == (tmp_path, tmp_path)


def test_inside_a_hidden_folder_is_refused_alike(shared):
    """A run another session is training lies under a shared root, but is theirs until it ends."""
    hidden = shared / "photos"
    assert refusal(hidden / "a.jpg", [shared], hidden=[hidden]) == refusal(shared / "missing", [shared])
    assert access.server_path(shared / "photos" / "a.jpg", [shared], hidden=[shared / "other"])


def test_nothing_is_shared_without_roots(shared):
    assert refusal(shared / "photos", []) == (f"{access.REFUSED}: it shares no folder, so use uploads (the operator "
                                              f"sets {access.ROOTS_ENV})")
    assert not access.is_shared(shared / "photos", [])
    assert access.is_shared(shared / "photos", [shared], "folder")


def test_the_app_listens_on_localhost_and_hides_error_details():
    settings = tomllib.loads(CONFIG.read_text())
    assert settings["server"]["address"] == "localhost"
    # "none": no type, message or traceback in the browser; false would mean "stacktrace" in Streamlit 1.67
    assert settings["client"]["showErrorDetails"] == "none"
