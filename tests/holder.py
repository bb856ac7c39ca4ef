"""A second process that holds a DuckDB file open, as a notebook or a running score would."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOLD = """
import sys, time
import duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "read")
print("open", flush=True)
time.sleep(float(sys.argv[3]))
"""


@contextmanager
def holding(path: Path, mode: str = "read", seconds: float = 600) -> Iterator[int]:
    """A python process with ``path`` open (``mode`` read: read-only, write: for writing) for
    ``seconds`` or until the block ends; yields its PID."""
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(path), mode, str(seconds)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "open", child.stderr.read() if \
            child.stderr else ""
        yield child.pid
    finally:
        child.kill()
        child.communicate()
