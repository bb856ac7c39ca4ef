"""The corpus of bad exports: each one exits 2 with a message naming table and column.

Each folder under ``bad_inputs/`` is a small source with one defect and an ``expect.yaml`` that
says which table and column the message must name and a phrase it must contain.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import TESTS, run_cli, snapshot

CASES = sorted(p for p in (TESTS / "bad_inputs").iterdir() if p.is_dir())


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_exits_2_with_a_clear_message(case: Path, tmp_path: Path, workdir: Path) -> None:
    expect = yaml.safe_load((case / "expect.yaml").read_text())
    source = tmp_path / "source"
    shutil.copytree(case, source, ignore=shutil.ignore_patterns("expect.yaml"))
    before = snapshot(tmp_path)

    result = run_cli("validate", "--source", str(source), cwd=workdir)

    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert re.search(rf"\b{expect['table']}\b", output), output
    if expect["column"]:
        assert re.search(rf"\b{expect['table']}\.{expect['column']}\b|\b{expect['column']}\b",
                         output), output
    assert expect["message"].lower() in output.lower(), output
    assert snapshot(tmp_path) == before, "validate wrote or changed files"


def test_messages_show_example_rows(tmp_path: Path) -> None:
    result = run_cli("validate", "--source", str(TESTS / "bad_inputs" / "mixed_date_formats"))
    assert result.returncode == 2
    assert "2 rows: not an ISO date" in result.stdout
    assert "04-20-2024" in result.stdout and "25.05.2024" in result.stdout
    assert "Fix:" in result.stdout


def test_an_empty_customers_table_is_one_problem_not_every_order() -> None:
    result = run_cli("validate", "--source", str(TESTS / "bad_inputs" / "empty_customers_table"))
    assert result.returncode == 2
    assert "1 problem(s) found" in result.stdout
    assert "customers table lacks" not in result.stdout
