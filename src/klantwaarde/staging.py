"""Writing an output folder or file all at once: into a hidden staging path, moved into place at
the end.

An interrupted run leaves no half-written folder behind, and an existing folder with files in it
is never touched.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from klantwaarde.errors import InputError


@contextmanager
def staged_folder(target: Path, command: str) -> Iterator[Path]:
    """A fresh hidden folder that becomes ``target`` when the block succeeds."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InputError(f"--out {target} already exists and is not an empty folder; "
                         f"klantwaarde {command} never overwrites data. Choose a new folder or "
                         "remove this one.")
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(target)
    staging = target.parent / f".{target.name}.partial-{os.getpid()}"
    staging.mkdir()
    try:
        yield staging
        if target.exists():
            target.rmdir()  # empty, checked above
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextmanager
def staged_file(target: Path, command: str) -> Iterator[Path]:
    """A hidden path next to ``target`` to write to; it becomes ``target`` when the block
    succeeds. An existing ``target`` is refused."""
    if target.exists():
        raise InputError(f"--out {target} already exists; klantwaarde {command} never "
                         "overwrites data. Choose a new file name or remove this file.")
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(target)
    staging = target.parent / f".{target.name}.partial-{os.getpid()}"
    try:
        yield staging
        staging.rename(target)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def _remove_abandoned(target: Path) -> None:
    """Remove staging folders or files of ``target`` left by runs that were killed."""
    for staging in target.parent.glob(f".{target.name}.partial-*"):
        pid = staging.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _running(int(pid)):
            if staging.is_dir():
                shutil.rmtree(staging, ignore_errors=True)
            else:
                staging.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
