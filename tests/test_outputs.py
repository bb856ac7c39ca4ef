"""Every place a command writes is checked before it computes: writable, outside the source and
free; a refused command changes nothing on disk. And every command that reads a source at an
--as-of refuses one after the data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import run_cli, snapshot

AS_OF = "2024-12-31"  # the last day of the simulated base


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 simulated customers, 24 months to 2024-12-31, as CSV files."""
    root = tmp_path_factory.mktemp("outputs")
    result = run_cli("simulate", "--customers", "300", "--months", "24", "--start", "2023-01-01",
                     "--seed", "3", "--format", "csv", "--out", str(root / "src"))
    assert result.returncode == 0, result.stderr
    return root / "src"


def _said(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join(result.stderr.split())


def _refused(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "Error" in result.stderr
    return _said(result)


def test_an_output_inside_the_source_folder_is_refused(base: Path, workdir: Path) -> None:
    before = snapshot(base)
    said = _refused(run_cli("features", "--source", str(base), "--as-of", AS_OF, "--out",
                            str(base / "orders.parquet"), cwd=workdir))
    assert f"{base / 'orders.parquet'} is inside the source folder {base}" in said
    assert "Fix: write outside the source" in said
    assert snapshot(base) == before
    assert run_cli("validate", "--source", str(base)).returncode == 0


def test_an_output_into_a_subfolder_of_the_source_is_refused(base: Path, workdir: Path) -> None:
    before = snapshot(base)
    said = _refused(run_cli("profitability", "--source", str(base), "--as-of", AS_OF, "--out",
                            str(base / "profit"), cwd=workdir))
    assert "inside the source folder" in said
    assert snapshot(base) == before


def test_a_scores_store_that_is_the_source_database_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "base.duckdb"
    assert run_cli("simulate", "--customers", "100", "--months", "13", "--seed", "1",
                   "--format", "duckdb", "--out", str(tmp_path / "sim")).returncode == 0
    shutil.move(tmp_path / "sim" / "klantwaarde.duckdb", source)
    config = tmp_path / "config"
    config.mkdir()
    (config / "scoring.yaml").write_text(yaml.safe_dump({"store": str(source)}))
    said = _refused(run_cli("score", "--source", str(source), "--as-of", "2025-01-31",
                            "--config", str(config), cwd=tmp_path))
    assert f"the scores store (store in scoring.yaml) {source} is the source" in said


@pytest.mark.parametrize("command", ["profitability", "features"])
def test_an_as_of_after_the_data_is_refused(base: Path, workdir: Path, command: str) -> None:
    out = workdir / "deep" / "down" / ("out.parquet" if command == "features" else "out")
    said = _refused(run_cli(command, "--source", str(base), "--as-of", "2025-12-31", "--out",
                            str(out), cwd=workdir))
    assert "the newest order line is dated 2024-12-31" in said
    assert "more than a month before --as-of 2025-12-31" in said
    assert not any(workdir.iterdir())  # not even the folders above --out


def test_an_as_of_within_a_month_of_the_data_is_accepted(base: Path, workdir: Path) -> None:
    result = run_cli("profitability", "--source", str(base), "--as-of", "2025-01-15", "--out",
                     "p", cwd=workdir)
    assert result.returncode == 0, result.stderr


def _read_only(folder: Path) -> list[str]:
    """The command prefix that runs a program with ``folder`` read-only: a bind mount in a user
    namespace (refused even to the root user), else the folder's write permission taken away."""
    if shutil.which("unshare"):
        prefix = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                  'mount --bind -o ro "$0" "$0" && exec "$@"', str(folder)]
        if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            return prefix
    if os.geteuid() == 0:
        pytest.fail("cannot make a folder read-only here: unshare (util-linux) with user "
                    "namespaces is needed when the tests run as root")
    folder.chmod(0o555)
    return []


def _run_read_only(folder: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("KLANTWAARDE_DEBUG", "MLFLOW_TRACKING_URI")} | {"COLUMNS": "200"}
    try:
        return subprocess.run([*_read_only(folder), sys.executable, "-m", "klantwaarde", *args],
                              cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    finally:
        folder.chmod(0o755)


def test_an_unwritable_out_is_refused_before_any_work(base: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    said = _refused(_run_read_only(locked, "profitability", "--source", str(base), "--as-of",
                                   AS_OF, "--out", str(locked / "profit"), cwd=tmp_path))
    assert f"--out {locked / 'profit'} cannot be created: {locked} is not writable" in said
    assert "partial" not in said and "PermissionError" not in said
    assert not any(locked.iterdir())


def test_an_unwritable_scores_store_is_refused_before_any_work(base: Path,
                                                               tmp_path: Path) -> None:
    """Refused before the source is read or the models are looked up: no MLflow store either."""
    scores = tmp_path / "scores"
    scores.mkdir()
    (scores / "scores.duckdb").touch()
    config = tmp_path / "config"
    config.mkdir()
    (config / "scoring.yaml").write_text(yaml.safe_dump(
        {"store": str(scores / "scores.duckdb"), "parquet": str(scores / "parquet")}))
    (config / "models.yaml").write_text(yaml.safe_dump({"store": str(tmp_path / "models")}))
    said = _refused(_run_read_only(scores, "score", "--source", str(base), "--as-of", AS_OF,
                                   "--config", str(config), cwd=tmp_path))
    assert f"the scores store (store in scoring.yaml) {scores / 'scores.duckdb'} is not " \
           "writable" in said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config", "scores"]


def test_an_out_that_is_a_file_is_refused(base: Path, workdir: Path) -> None:
    (workdir / "taken").write_text("a file of the user's\n")
    said = _refused(run_cli("profitability", "--source", str(base), "--as-of", AS_OF, "--out",
                            "taken/profit", cwd=workdir))
    assert "taken/profit cannot be created: taken is a file, not a folder" in said
    assert (workdir / "taken").read_text() == "a file of the user's\n"


def test_a_pipeline_whose_lists_folder_is_taken_runs_nothing(base: Path, tmp_path: Path) -> None:
    (tmp_path / "lists" / AS_OF).mkdir(parents=True)
    (tmp_path / "lists" / AS_OF / "notes.txt").write_text("the user's own\n")
    pipeline = tmp_path / "monthly.yaml"
    pipeline.write_text(yaml.safe_dump({
        "source": str(base), "runs": str(tmp_path / "runs"),
        "steps": [{"step": "score"}, {"step": "lists", "out": str(tmp_path / "lists/{as_of}")}]}))
    said = _refused(run_cli("run", str(pipeline), "--as-of", AS_OF, cwd=tmp_path))
    assert (f"lists.out of {pipeline} {tmp_path / 'lists' / AS_OF} holds files that "
            "klantwaarde lists did not write") in said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lists", "monthly.yaml"]


def test_a_pipeline_month_after_the_data_runs_no_step(base: Path, tmp_path: Path) -> None:
    pipeline = tmp_path / "training.yaml"
    pipeline.write_text(yaml.safe_dump({
        "source": str(base), "runs": str(tmp_path / "runs"),
        "steps": [{"step": "train"}, {"step": "promote"}]}))
    said = _refused(run_cli("run", str(pipeline), "--as-of", "2025-12-31", cwd=tmp_path))
    assert "the newest order line is dated 2024-12-31" in said
    assert "would count every customer as lost" in said
    assert not (tmp_path / "models").exists()
    assert not list((tmp_path / "runs").glob("*.json"))
