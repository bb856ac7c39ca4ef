"""Typed configuration: YAML files, one per section, loaded into frozen pydantic models.

The defaults are the YAML files shipped in ``klantwaarde/configs`` (the repository's ``configs/``).
A user's ``--config`` folder holds some of the same files; each key it sets replaces the default,
keys it leaves out keep the default. Unknown or mistyped keys are errors naming file and key.
"""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from klantwaarde.errors import ConfigError


class Section(BaseModel):
    """Base of every configuration section: frozen, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(Section):
    """How CSV files of a folder source are read."""

    encoding: Literal["utf-8", "latin-1", "utf-16"]
    decimal_separator: Literal["auto", ".", ","]


class ContractConfig(Section):
    """Settings of the data-contract checks."""

    protected_attributes: tuple[str, ...]
    isolated_date_gap_days: int = Field(gt=0)
    example_rows: int = Field(gt=0, le=50)


class Config(Section):
    """The whole configuration, one attribute per YAML file."""

    source: SourceConfig
    contract: ContractConfig


SECTIONS: dict[str, type[Section]] = {
    name: field.annotation for name, field in Config.model_fields.items()  # type: ignore[misc]
}


def default_config_dir() -> Path:
    """The folder of default YAML files shipped inside the package."""
    return Path(str(resources.files("klantwaarde") / "configs"))


def load_config(path: Path | None = None) -> Config:
    """Load the defaults, overlay the YAML files at ``path`` (a folder or one section file)."""
    raw = {name: _read_yaml(default_config_dir() / f"{name}.yaml") for name in SECTIONS}
    origin = {name: default_config_dir() / f"{name}.yaml" for name in SECTIONS}
    for section, file in _user_files(path):
        user = _read_yaml(file)
        raw[section] = {**raw[section], **user}
        origin[section] = file
    sections = {}
    for name, model in SECTIONS.items():
        try:
            sections[name] = model.model_validate(raw[name])
        except ValidationError as exc:
            raise ConfigError(_explain(exc, origin[name], model)) from None
    return Config(**sections)


def _user_files(path: Path | None) -> list[tuple[str, Path]]:
    if path is None:
        return []
    if not path.exists():
        raise ConfigError(f"Configuration {path} does not exist. Pass a folder of YAML files "
                          f"({', '.join(f'{s}.yaml' for s in SECTIONS)}) or one of those files.")
    files = sorted(path.glob("*.y*ml")) if path.is_dir() else [path]
    found = []
    for file in files:
        section = file.stem
        if file.suffix not in (".yaml", ".yml") or section not in SECTIONS:
            hint = _did_you_mean(section, SECTIONS)
            raise ConfigError(f"{file}: not a configuration file of klantwaarde; the files are "
                              f"{', '.join(f'{s}.yaml' for s in SECTIONS)}.{hint}")
        found.append((section, file))
    return found


def _read_yaml(file: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping of keys to values, "
                          f"got {type(data).__name__}.")
    return data


def _explain(exc: ValidationError, file: Path, model: type[Section]) -> str:
    allowed = list(model.model_fields)
    lines = [f"{file}: invalid configuration."]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"  unknown key '{key}'; allowed keys: {', '.join(allowed)}."
                         + _did_you_mean(key, allowed))
        elif err["type"] == "missing":
            lines.append(f"  missing key '{key}'.")
        else:
            lines.append(f"  key '{key}': {err['msg']} (got {err.get('input')!r}).")
    return "\n".join(lines)


def _did_you_mean(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""
