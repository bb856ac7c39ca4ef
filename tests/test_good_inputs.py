"""Exports that look like real ones and are valid: each passes with exit code 0."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import EXAMPLE, TESTS, run_cli, snapshot

CASES = sorted(p for p in (TESTS / "good_inputs").iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_good_input_is_valid(case: Path, workdir: Path) -> None:
    expect = yaml.safe_load((case / "expect.yaml").read_text())
    args = ["validate", "--source", str(case)]
    if expect.get("config"):
        args += ["--config", str(case / expect["config"])]
    before = snapshot(case, workdir)

    result = run_cli(*args, cwd=workdir)

    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 0, output
    assert "Valid: the source meets the data contract" in output
    if expect["notice"]:
        assert expect["notice"] in output
    assert snapshot(case, workdir) == before


def test_example_dataset_summary() -> None:
    result = run_cli("validate", "--source", str(EXAMPLE))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line.split("│")[1].strip(): line for line in result.stdout.splitlines()
             if line.count("│") > 3}
    orders = [cell.strip() for cell in lines["orders"].split("│")]
    assert orders[1:7] == ["orders", "orders.csv", "130", "6", "2023-01-01", "2024-12-27"]
    assert "Data horizon: 2023-01-01 to 2024-12-31" in result.stdout


def test_latin1_file_fails_without_the_encoding_setting() -> None:
    result = run_cli("validate", "--source", str(TESTS / "good_inputs" / "latin1_with_config"))
    assert result.returncode == 2
    assert "customers.csv" in result.stderr and "column industry, line 2" in result.stderr
    assert "encoding: latin-1" in result.stderr
