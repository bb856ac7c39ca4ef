"""The command surface of the design: every command registered, with help and exit codes."""

from __future__ import annotations

import pytest

from conftest import EXAMPLE, run_cli
from klantwaarde import __version__

COMMANDS = ["simulate", "validate", "profitability", "features", "train", "promote", "score",
            "lists", "evaluate", "report", "run", "schedule", "demo"]


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
