"""The README's contract table says what the code declares."""

from __future__ import annotations

import re
from pathlib import Path

from klantwaarde.contract import TABLES

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_readme_starts_with_the_two_commands() -> None:
    head = README.splitlines()[:6]
    assert any(line.startswith("make demo") for line in head)
    assert any(line.startswith("make test") for line in head)


def test_readme_contract_table_matches_the_declared_contract() -> None:
    for spec in TABLES:
        row = next(line for line in README.splitlines() if line.startswith(f"| {spec.name} |"))
        cells = row.split("|")[3]
        required = re.findall(r"\*\*(\w+)\*\*", cells)
        listed = re.findall(r"\b[a-z_]+\b", cells.replace("any attribute columns", ""))
        assert required == [c.name for c in spec.required_columns]
        assert listed == list(spec.column_names)
        if spec.key:
            assert f"`{spec.key}` unique" in row
