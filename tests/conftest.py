"""Shared helpers: run the real command line in a subprocess, snapshot folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
EXAMPLE = TESTS / "data" / "example"
# tiny models, so that a test trains all three targets in seconds
SMALL_MODELS = {"seed": 7, "train_snapshots": 3, "validation_snapshots": 1,
                "xgboost": {"max_rounds": {"churn": 40, "margin": 40, "upgrade": 40},
                            "early_stopping_rounds": 10,
                            "search": {"max_depth": [3], "learning_rate": [0.3]}},
                "response": {"rounds": 100, "max_depth": 3},
                "promotion": {"automatic": True, "min_improvement": 0.005}}


def simulated_base(root: Path, store: Path, automatic: bool) -> tuple[Path, Path]:
    """``root/base``: 1,200 simulated customers from 2023-07-01 to 2025-06-30; ``root/config``:
    small models (promoted automatically or not) stored in ``root/models``, and the scores
    table ``store`` with its Parquet copy in ``store.parent/parquet``."""
    import yaml

    base, config = root / "base", root / "config"
    result = run_cli("simulate", "--customers", "1200", "--months", "24", "--start",
                     "2023-07-01", "--seed", "5", "--out", str(base))
    assert result.returncode == 0, result.stderr
    config.mkdir()
    models = SMALL_MODELS | {"store": str(root / "models"),
                             "promotion": {"automatic": automatic, "min_improvement": 0.005}}
    (config / "models.yaml").write_text(yaml.safe_dump(models))
    (config / "scoring.yaml").write_text(yaml.safe_dump(
        {"store": str(store), "parquet": str(store.parent / "parquet")}))
    return base, config


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120, input_text: str | None = None
            ) -> subprocess.CompletedProcess[str]:
    """Run ``python -m klantwaarde ARGS`` as a user would, with ``env`` over this process's
    environment; output of both streams as text. MLFLOW_TRACKING_URI is not passed on: MLflow
    sets it in this process when a test connects; nor is MLFLOW_LOGGING_LEVEL, which the command
    line sets in a test that runs it in this process. A command that runs longer than
    ``timeout`` seconds fails the test. ``input_text`` is its standard input."""
    env = {k: v for k, v in os.environ.items() if k not in (
        "KLANTWAARDE_DEBUG", "MLFLOW_TRACKING_URI", "MLFLOW_LOGGING_LEVEL")} | (env or {})
    env["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-m", "klantwaarde", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout,
                          input=input_text)


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
