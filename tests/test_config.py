"""Typed configuration: shipped defaults, partial overrides, and errors that name file and key."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from conftest import EXAMPLE, run_cli
from klantwaarde.config import SECTIONS, default_config_dir, load_config
from klantwaarde.errors import ConfigError

REPO = Path(__file__).parents[1]


def test_defaults_come_from_the_shipped_yaml() -> None:
    cfg = load_config()
    assert cfg.source.encoding == "utf-8"
    assert "gender" in cfg.contract.protected_attributes
    assert cfg.contract.isolated_date_gap_days == 365


def test_repository_configs_are_the_shipped_defaults() -> None:
    shipped = {p.name: p.read_text() for p in default_config_dir().glob("*.yaml")}
    in_repo = {p.name: p.read_text() for p in (REPO / "configs").glob("*.yaml")}
    assert shipped == in_repo
    assert set(shipped) == {f"{name}.yaml" for name in SECTIONS}


def test_a_user_file_overrides_only_its_keys(tmp_path: Path) -> None:
    (tmp_path / "contract.yaml").write_text("example_rows: 3\n")
    cfg = load_config(tmp_path)
    assert cfg.contract.example_rows == 3
    assert cfg.contract.isolated_date_gap_days == 365


def test_configuration_is_frozen() -> None:
    cfg = load_config()
    with pytest.raises(pydantic.ValidationError):
        cfg.contract.example_rows = 9  # type: ignore[misc]


def test_unknown_key_names_file_key_and_allowed_keys(tmp_path: Path) -> None:
    (tmp_path / "contract.yaml").write_text("example_row: 3\n")
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path)
    message = str(exc.value)
    assert str(tmp_path / "contract.yaml") in message
    assert "unknown key 'example_row'" in message
    assert "protected_attributes, isolated_date_gap_days, example_rows" in message
    assert "Did you mean 'example_rows'?" in message


def test_wrong_type_and_value_are_explained(tmp_path: Path) -> None:
    (tmp_path / "source.yaml").write_text("encoding: cp1252\n")
    with pytest.raises(ConfigError, match=r"key 'encoding'.*'cp1252'"):
        load_config(tmp_path)
    (tmp_path / "source.yaml").write_text("encoding: [1, 2]\n")
    with pytest.raises(ConfigError, match="key 'encoding'"):
        load_config(tmp_path)


def test_unknown_file_and_broken_yaml(tmp_path: Path) -> None:
    (tmp_path / "contracts.yaml").write_text("example_rows: 3\n")
    with pytest.raises(ConfigError, match="Did you mean 'contract'"):
        load_config(tmp_path)
    (tmp_path / "contracts.yaml").unlink()
    (tmp_path / "contract.yaml").write_text("example_rows: [3\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nowhere")


def test_single_section_file_is_accepted(tmp_path: Path) -> None:
    file = tmp_path / "source.yaml"
    file.write_text("decimal_separator: ','\n")
    assert load_config(file).source.decimal_separator == ","


@pytest.mark.parametrize("where", ["global", "command"])
def test_cli_exits_2_on_a_bad_config(tmp_path: Path, where: str) -> None:
    (tmp_path / "contract.yaml").write_text("protected: [gender]\n")
    if where == "global":
        result = run_cli("--config", str(tmp_path), "validate", "--source", str(EXAMPLE))
    else:
        result = run_cli("validate", "--source", str(EXAMPLE), "--config", str(tmp_path))
    assert result.returncode == 2
    assert "unknown key 'protected'" in result.stderr
    assert "Traceback" not in result.stderr
