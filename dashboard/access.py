"""Which server paths a visitor may name: only those under the folders the operator shares.

Pages let people type folders and files (the sidebar's dataset and model folder, the batch
folder, the training dataset). Served to others, that lets anyone list, read or probe the
server's files, so every typed path goes through `server_path`: resolved (symlinks, `..`,
relative to the project) and accepted only when it lies under a shared root and exists, readable,
and not inside a folder kept from this visitor (a run another session is training). Anything else
gets the same message (`refused`), so a missing file, a forbidden one (/etc/shadow), one outside
the roots and someone else's running run cannot be told apart; it names the folders that are
shared, so a visitor knows where a path may lead.

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
REFUSED = "not found, or not in a folder this server shares"  # how every refusal starts (`refused`)

Kind = Literal["folder", "file", "any"]


def refused(roots: Iterable[Path]) -> str:
    """The one refusal, naming what is shared: the same whatever the path was."""
    roots = list(roots)
    if not roots:
        return f"{REFUSED}: it shares no folder, so use uploads (the operator sets {ROOTS_ENV})"
    return f"{REFUSED} ({', '.join(str(root) for root in roots)})"


class PathRefused(ValueError):
    """A typed path the visitor may not use; the message is always `refused(roots)`."""

    def __init__(self, roots: Iterable[Path]) -> None:
        super().__init__(refused(roots))


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


def server_path(typed: str | os.PathLike, roots: Iterable[Path], kind: Kind = "any",
                hidden: Iterable[Path] = ()) -> Path:
    """The real path of `typed` when it is a readable `kind` under one of `roots` and not inside
    one of the `hidden` folders; raises PathRefused."""
    roots = tuple(roots)
    try:
        real = Path(os.path.realpath(PROJECT_ROOT / Path(typed).expanduser()))
    except (OSError, ValueError, RuntimeError):  # a NUL byte; ~user for no such user
        raise PathRefused(roots) from None
    if not any(real.is_relative_to(root) for root in roots):
        raise PathRefused(roots)
    if any(real.is_relative_to(os.path.realpath(folder)) for folder in hidden):
        raise PathRefused(roots)
    exists = {"folder": real.is_dir, "file": real.is_file, "any": real.exists}[kind]
    if not (exists() and os.access(real, os.R_OK | (os.X_OK if real.is_dir() else 0))):
        raise PathRefused(roots)
    return real


def is_shared(typed: str | os.PathLike, roots: Iterable[Path], kind: Kind = "any", hidden: Iterable[Path] = ()) -> bool:
    """`server_path` as a yes/no, for suggestions that must not name what a visitor may not use."""
    try:
        server_path(typed, roots, kind, hidden)
    except PathRefused:
        return False
    return True
