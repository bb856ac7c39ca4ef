"""Shared helpers: run the real command line in a subprocess, snapshot folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
EXAMPLE = TESTS / "data" / "example"


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m klantwaarde ARGS`` as a user would; output of both streams as text.
    MLFLOW_TRACKING_URI is not passed on: MLflow sets it in this process when a test connects."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("KLANTWAARDE_DEBUG", "MLFLOW_TRACKING_URI")}
    env["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-m", "klantwaarde", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def snapshot(*folders: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folders`` with its size and modification time."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns)
            for folder in folders for p in sorted(folder.rglob("*"))}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty working directory for a command, to prove it writes nothing there."""
    path = tmp_path / "cwd"
    path.mkdir()
    return path
