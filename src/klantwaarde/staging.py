"""Writing an output folder or file all at once: into a hidden staging path, moved into place at
the end.

An interrupted run leaves no half-written folder behind, and an existing folder with files in it
is never touched, except the command's own earlier output where the caller allows replacing it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from klantwaarde.outputs import Kind, Place, check_places


@contextmanager
def staged_folder(target: Path, command: str, replaces: str | None = None) -> Iterator[Path]:
    """A fresh hidden folder that becomes ``target`` when the block succeeds.

    An existing ``target`` with files in it is refused, unless ``replaces`` names a file that
    marks the command's own earlier output and ``target`` holds it: then the new folder takes
    its place (renamed in, the old one renamed out and removed).
    """
    check_places([Place(target, "--out", Kind.NEW_FOLDER, replaces)], command)
    own = replaces is not None and (target / replaces).is_file()
    with _parents(target):
        remove_abandoned(target)
        staging = target.parent / f".{target.name}.partial-{os.getpid()}"
        old = target.parent / f".{target.name}.replaced-{os.getpid()}"
        staging.mkdir()
        try:
            yield staging
            if own:
                target.rename(old)
            elif target.exists():
                target.rmdir()  # empty, checked above
            staging.rename(target)
        except BaseException:
            if old.exists() and not target.exists():
                old.rename(target)
            shutil.rmtree(staging, ignore_errors=True)
            raise
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_file(target: Path, command: str) -> Iterator[Path]:
    """A hidden path next to ``target`` to write to; it becomes ``target`` when the block
    succeeds. An existing ``target`` is refused."""
    check_places([Place(target, "--out", Kind.NEW_FILE)], command)
    with _parents(target):
        remove_abandoned(target)
        staging = target.parent / f".{target.name}.partial-{os.getpid()}"
        try:
            yield staging
            staging.rename(target)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise


@contextmanager
def _parents(target: Path) -> Iterator[None]:
    """The folders above ``target`` exist for the block; those it had to create are removed
    again when the block fails, so a failed command leaves no empty folders behind."""
    made = [p for p in reversed(target.parents) if not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:
                break
        raise


def remove_abandoned(target: Path) -> None:
    """Remove staging folders or files of ``target``, and replaced folders, left by runs that
    were killed."""
    for kind in ("partial", "replaced"):
        for staging in target.parent.glob(f".{target.name}.{kind}-*"):
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
