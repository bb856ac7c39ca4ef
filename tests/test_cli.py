"""The command surface of the design: every command registered, with help and exit codes."""

from __future__ import annotations

import inspect
import re

import pytest

from conftest import EXAMPLE, run_cli
from klantwaarde import __version__, cli

COMMANDS = ["simulate", "validate", "profitability", "features", "train", "promote", "score",
            "lists", "explain", "evaluate", "report", "run", "schedule", "demo"]


def test_every_command_is_listed() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_takes_config(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0, result.stderr
    assert "--config" in result.stdout


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_shows_plain_metavars_and_an_example(command: str) -> None:
    result = run_cli(*filter(None, [command]), "--help")
    assert result.returncode == 0, result.stderr
    help_text = result.stdout
    # a flag takes no value; values are named (PATH, DATE, N), not by Python types or formats
    assert not re.search(r"<(bool|str|int|float|datetime|list|%)|list\[|\{\w+\}|%Y", help_text)
    assert re.search(r"--help +Show this message", help_text)
    assert "Example" in help_text and "klantwaarde " + command in help_text


@pytest.mark.parametrize("command", COMMANDS)
def test_help_paragraphs_are_flowed_by_the_terminal(command: str) -> None:
    """At 200 columns a paragraph of the docstring starts with a full line, not with the line
    breaks of the source."""
    help_text = run_cli(command, "--help").stdout
    doc = inspect.getdoc(getattr(cli, command))
    prose = [" ".join(p.split()) for p in doc.split("\n\n") if not p.startswith(("`", "Ex"))]
    for paragraph in prose:
        assert paragraph[:150] in help_text


@pytest.mark.parametrize("args", [
    ["score", "--source", "s", "--as-of", "2025-13-01"],
    ["lists", "--out", "x", "--as-of", "2025-02-30"],
    ["run", "pipelines/monthly_scoring.yaml", "--as-of", "31-12-2025"],
    ["simulate", "--customers", "5", "--months", "2", "--seed", "1", "--out", "x",
     "--start", "2025/01/01"],
])
def test_a_bad_date_says_how_to_write_one(args: list[str], workdir) -> None:
    result = run_cli(*args, cwd=workdir)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert f"'{args[-2]}': {args[-1]} is not a date" in message
    assert "use YYYY-MM-DD, e.g. 2025-12-31" in message
    assert "%Y" not in message and "Traceback" not in message
    assert not any(workdir.iterdir())


def test_demo_into_a_file_exits_2_naming_it(workdir) -> None:
    (workdir / "notes.txt").write_text("mine\n")
    result = run_cli("demo", "--out", "notes.txt", cwd=workdir)
    assert result.returncode == 2
    assert "--out notes.txt is a file, not a folder" in result.stderr
    assert "Traceback" not in result.stderr and "NotADirectoryError" not in result.stderr
    assert [p.name for p in workdir.iterdir()] == ["notes.txt"]
    assert (workdir / "notes.txt").read_text() == "mine\n"


def test_a_report_of_a_month_that_is_not_scored_says_what_to_run(workdir) -> None:
    result = run_cli("report", "--as-of", "2024-06-30", "--out", "x.html", cwd=workdir)
    assert result.returncode == 2
    assert "holds no scores at 2024-06-30" in " ".join(result.stderr.split())
    assert "klantwaarde score" in result.stderr and "Traceback" not in result.stderr
    assert not any(workdir.iterdir())


@pytest.mark.parametrize("args", [
    ["score", "--source", "s", "--as-of", "30-06-2024"],
    ["promote", "--target", "revenue"],
    ["validate"],
    ["nonsense"],
])
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and __version__ in result.stdout


def test_unreadable_parquet_exits_2(tmp_path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "orders.parquet").write_bytes(b"this is no parquet file")
    result = run_cli("validate", "--source", str(source))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "orders (orders.parquet) cannot be read as Parquet" in result.stderr


def test_unexpected_failures_exit_1_without_traceback(tmp_path, monkeypatch) -> None:
    from klantwaarde import cli

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("klantwaarde.validation.validate_source", broken)
    monkeypatch.setattr("sys.argv", ["klantwaarde", "validate", "--source", str(EXAMPLE)])
    monkeypatch.delenv("KLANTWAARDE_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 1


def test_validate_module_and_console_script_agree() -> None:
    result = run_cli("validate", "--source", str(EXAMPLE))
    assert result.returncode == 0
