"""Which server paths a visitor may name: only those under the folders the operator shares.

Pages let people type folders and files (the sidebar's dataset and model folder, the batch
folder, the training dataset). Served to others, that lets anyone list, read or probe the
server's files, so every typed path goes through `server_path`: resolved (symlinks, `..`,
relative to the project) and accepted only when it lies under a shared root and exists, readable.
Anything else gets the same REFUSED message, so a missing file, a forbidden one (/etc/shadow) and
one outside the roots cannot be told apart.

The roots come from $AGE_GENDER_SERVER_ROOTS (os.pathsep-separated; set but empty: none). Unset,
they are the project folder and ../shared/datasets while the app listens on localhost only, and
none (uploads only) when it listens on other addresses. Plain functions, no Streamlit: the app
passes in the environment and its `server.address` (see `state.server_roots`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Literal

from core.config import PROJECT_ROOT

ROOTS_ENV = "AGE_GENDER_SERVER_ROOTS"
LOCAL_ADDRESSES = frozenset({"localhost", "127.0.0.1", "::1"})
REFUSED = f"not found, or not in a folder this server shares (see {ROOTS_ENV})"

Kind = Literal["folder", "file", "any"]


class PathRefused(ValueError):
    """A typed path the visitor may not use; the message is always REFUSED."""

    def __init__(self) -> None:
        super().__init__(REFUSED)


def default_roots() -> tuple[Path, ...]:
    """What a local user can reach without configuring anything: the project and the shared datasets."""
    return PROJECT_ROOT, PROJECT_ROOT.parent / "shared" / "datasets"


def is_local(address: str | None) -> bool:
    """Whether Streamlit's server.address only accepts connections from this machine (unset: all interfaces)."""
    return address in LOCAL_ADDRESSES


def server_roots(setting: str | None, address: str | None) -> tuple[Path, ...]:
    """The shared roots, resolved: from the env setting when given, else the defaults on localhost only."""
    if setting is None:
        chosen: Iterable[Path] = default_roots() if is_local(address) else ()
    else:
        chosen = (Path(part).expanduser() for part in setting.split(os.pathsep) if part.strip())
    return tuple(Path(os.path.realpath(root)) for root in chosen)


def server_path(typed: str | os.PathLike, roots: Iterable[Path], kind: Kind = "any") -> Path:
    """The real path of `typed` when it is a readable `kind` under one of `roots`; raises PathRefused."""
    try:
        real = Path(os.path.realpath(PROJECT_ROOT / Path(typed).expanduser()))
    except (OSError, ValueError, RuntimeError):  # a NUL byte; ~user for no such user
        raise PathRefused() from None
    if not any(real.is_relative_to(root) for root in roots):
        raise PathRefused()
    exists = {"folder": real.is_dir, "file": real.is_file, "any": real.exists}[kind]
    if not (exists() and os.access(real, os.R_OK | (os.X_OK if real.is_dir() else 0))):
        raise PathRefused()
    return real


def is_shared(typed: str | os.PathLike, roots: Iterable[Path], kind: Kind = "any") -> bool:
    """`server_path` as a yes/no, for suggestions that must not name what a visitor may not use."""
    try:
        server_path(typed, roots, kind)
    except PathRefused:
        return False
    return True
