"""Where a command will write, checked before it computes anything.

Every place a command writes (an ``--out``, the scores store, the MLflow store, the lists
folder, a pipeline's runs folder) must be writable, outside the source it reads, and free (a new
file or folder that does not exist yet, or the command's own earlier output where it replaces
that). A place that is not is an input error naming the user's path and the fix, raised before
any work is done, so a refused command changes nothing on disk.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from klantwaarde.errors import InputError


class Kind(Enum):
    NEW_FILE = "a new file"  # must not exist yet
    NEW_FOLDER = "a new folder"  # must not exist, or be empty (or the command's own output)
    FILE = "a file"  # written in place: may exist (a store)
    FOLDER = "a folder"  # written into: may exist


@dataclass(frozen=True)
class Place:
    """One place a command writes: ``what`` names it as the user knows it (an option or the key
    of a configuration file)."""

    path: Path
    what: str
    kind: Kind
    replaces: str | None = None  # NEW_FOLDER: the file that marks the command's own output
    owner: str | None = None  # the command that writes it, where it is not the one run


def check_places(places: Iterable[Place], command: str, source: str | None = None) -> None:
    """Every place is outside ``source``, writable and free; otherwise an input error."""
    for place in places:
        _outside(place, source)
        _free(place, command)
        _writable(place)


def mlflow_store(store: Path) -> list[Place]:
    """The embedded MLflow store of models.yaml, unless MLFLOW_TRACKING_URI names a server."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return []
    return [Place(store, "the MLflow store (store in models.yaml)", Kind.FOLDER),
            Place(store / "mlflow.db", "the MLflow database (store in models.yaml)", Kind.FILE)]


def scores_store(store: Path, parquet: Path) -> list[Place]:
    """The scores table and its Parquet copies of scoring.yaml."""
    return [Place(store, "the scores store (store in scoring.yaml)", Kind.FILE),
            Place(parquet, "the scores' Parquet copies (parquet in scoring.yaml)", Kind.FOLDER)]


def _outside(place: Place, source: str | None) -> None:
    """Not the source file, and not inside the source folder (a file written there would be
    read as a second table by every later command)."""
    if source is not None and source.startswith("spark:"):
        source = source.removeprefix("spark:")  # a folder of Parquet tables, or a catalog
    if source is None or "://" in source or ":" in source.split("/", 1)[0]:
        return
    src, path = Path(source).resolve(), place.path.resolve()
    if path == src:
        raise InputError(f"{place.what} {place.path} is the source {source} itself; klantwaarde "
                         "never writes to its source. Fix: choose another path.")
    if src.is_dir() and path.is_relative_to(src):
        raise InputError(f"{place.what} {place.path} is inside the source folder {source}: every "
                         "later command on that source would read what is written there as its "
                         f"tables. Fix: write outside the source, e.g. {src.parent / path.name}.")


def _free(place: Place, command: str) -> None:
    path = place.path
    if not path.exists():
        return
    if place.kind is Kind.NEW_FILE:
        raise InputError(f"{place.what} {path} already exists; klantwaarde {command} never "
                         "overwrites data. Choose a new file name or remove this file.")
    if place.kind in (Kind.FOLDER, Kind.NEW_FOLDER) and not path.is_dir():
        raise InputError(f"{place.what} {path} is a file, not a folder. Choose a folder, or "
                         "move this file away.")
    if place.kind is Kind.FILE and not path.is_file():
        raise InputError(f"{place.what} {path} is a folder, not a file. Point it at a file "
                         "(it is created if missing).")
    if place.kind is Kind.NEW_FOLDER and any(path.iterdir()):
        if place.replaces is not None and (path / place.replaces).is_file():
            return
        if place.replaces is not None:
            raise InputError(f"{place.what} {path} holds files that klantwaarde "
                             f"{place.owner or command} did "
                             f"not write (no {place.replaces}); it replaces only its own earlier "
                             "output. Choose another folder or remove this one.")
        raise InputError(f"{place.what} {path} already exists and is not an empty folder; "
                         f"klantwaarde {command} never overwrites data. Choose a new folder or "
                         "remove this one.")


def _writable(place: Place) -> None:
    """The place, or the folder it will be created in, can be written to (``os.access``, which
    also sees a read-only file system for the root user)."""
    path = place.path
    if path.exists():
        folder = path if path.is_dir() else path.parent
        if not os.access(path, os.W_OK) or not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(f"{place.what} {path} is not writable. Fix: give this user write "
                             f"permission on it, or choose a writable place.")
        return
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{place.what} {path} cannot be created: {ancestor} is a file, not a "
                         "folder. Choose another place.")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"{place.what} {path} cannot be created: {ancestor} is not writable. "
                         "Fix: give this user write permission there, or choose a writable "
                         "place.")
