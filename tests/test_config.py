"""Typed configuration: shipped defaults, partial overrides, and errors that name file and key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import pydantic
import pytest
import yaml

from conftest import EXAMPLE, run_cli
from klantwaarde import config
from klantwaarde.config import SECTIONS, default_config_dir, load_config, read_yaml
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
    assert "key 'example_row': unknown key" in message
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
    assert "key 'protected': unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def _error(tmp_path: Path, file: str, text: str) -> str:
    """The message of the ConfigError that ``text`` in the user's ``file`` raises."""
    (tmp_path / file).write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path)
    return str(exc.value)


@pytest.mark.parametrize(("file", "text", "expected"), [
    ("models.yaml", "xgboost: {max_round: {churn: 10}}\n",
     "key 'xgboost.max_round': unknown key; allowed keys: max_rounds, early_stopping_rounds, "
     "search, subsample, colsample_bytree, min_child_weight, margin_huber_quantile. "
     "Did you mean 'max_rounds'?"),
    ("models.yaml", "xgboost: {max_rounds: {churn: 10, margn: 5}}\n",
     "key 'xgboost.max_rounds.margn': unknown key; allowed keys: churn, margin, upgrade. "
     "Did you mean 'margin'?"),
    ("simulate.yaml", "payment: {classes: {late: {shar: 0.2}}}\n",
     "key 'payment.classes.late.shar': unknown key; allowed keys: share, mean_days_late. "
     "Did you mean 'share'?"),
    ("profitability.yaml", "pyramid: [{tier: top, revenue_share: 0.4}, "
     "{tier: big, revenue_share: 0.8}, {tier: small, share: 1}]\n",
     "key 'pyramid[2].share': unknown key; allowed keys: tier, revenue_share. "
     "Did you mean 'revenue_share'?"),
    ("models.yaml", "selection: {churn: rocauc}\n",
     "key 'selection.churn': Input should be 'roc_auc', 'pr_auc', 'emp_per_customer' or "
     "'lift_top10' (got 'rocauc'). Did you mean 'roc_auc'?"),
])
def test_a_nested_typo_names_the_dotted_key_the_keys_there_and_the_closest(
        tmp_path: Path, file: str, text: str, expected: str) -> None:
    message = _error(tmp_path, file, text)
    assert str(tmp_path / file) in message
    assert expected in message


@pytest.mark.parametrize(("file", "text", "expected"), [
    ("profitability.yaml", "pyramid: [{tier: top, revenue_share: 0.4}, "
     "{tier: big, revenue_share: 0.3}, {tier: small, revenue_share: 1}]\n",
     "key 'pyramid[1].revenue_share': 0.3 does not exceed the bound of the tier before (0.4)"),
    ("profitability.yaml", "pyramid: [{tier: top, revenue_share: 0.4}, "
     "{tier: big, revenue_share: 0.9}]\nsignificant_tiers: [top]\n",
     "key 'pyramid[1].revenue_share': the last tier's bound must be 1"),
    ("profitability.yaml", "pyramid: [{tier: top, revenue_share: 0.4}, "
     "{tier: inactive, revenue_share: 1}]\nsignificant_tiers: [top]\n",
     "key 'pyramid[1].tier': 'inactive' is the tier of the customers without revenue"),
    ("profitability.yaml", "significant_tiers: [top, bgi]\n",
     "key 'significant_tiers[1]': unknown tier; the pyramid has top, big, medium, small. "
     "Did you mean 'big'?"),
    ("costs.yaml", "discount_bands: [{min_turnover: 10, discount: 0.1}]\n",
     "key 'discount_bands': the bands must start at min_turnover 0 and ascend"),
    ("simulate.yaml", "payment: {classes: {late: {share: 0.35}}}\n",
     "key 'payment.classes': shares must be non-negative and add up to 1; on_time 0.65, "
     "late 0.35, very_late 0.1 add up to 1.1"),
    ("simulate.yaml", "contact: {visits_per_year: {smal: 3}}\n",
     "key 'contact.visits_per_year.smal': unknown size class; population.size_classes has "
     "large, medium, small, micro. Did you mean 'small'?"),
    ("simulate.yaml", "cross_sell: {affinity: {retial: {tools: 2}}}\n",
     "key 'cross_sell.affinity.retial': unknown industry"),
    ("simulate.yaml", "cross_sell: {affinity: {retail: {tols: 2}}}\n",
     "key 'cross_sell.affinity.retail.tols': unknown category; catalog.category_margins has "
     "tools,"),
])
def test_a_validator_error_names_the_nested_key_not_the_whole_file(
        tmp_path: Path, file: str, text: str, expected: str) -> None:
    message = _error(tmp_path, file, text)
    assert expected in message
    assert "key ''" not in message and "{" not in message  # no dump of the configuration


def _bare(kind: Any) -> Any:
    return get_args(kind)[0] if get_origin(kind) is Annotated else kind


def _levels(kind: Any, data: Any, path: tuple[str | int, ...] = ()) -> Any:
    """Every mapping of the shipped configuration whose keys the schema fixes (a section, a
    dict keyed by a Literal), with its path and allowed keys, and every section class seen."""
    kind = _bare(kind)
    if isinstance(kind, type) and issubclass(kind, pydantic.BaseModel):
        yield path, list(kind.model_fields), kind
        for key, value in data.items():
            yield from _levels(kind.model_fields[key].annotation, value, (*path, key))
    elif get_origin(kind) is dict:
        key_kind, value_kind = map(_bare, get_args(kind))
        if get_origin(key_kind) is Literal:
            yield path, list(get_args(key_kind)), None
        for key, value in data.items():
            yield from _levels(value_kind, value, (*path, key))
    elif get_origin(kind) is tuple and isinstance(data, list) and data:
        yield from _levels(get_args(kind)[0], data[-1], (*path, len(data) - 1))


def _dotted(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).removeprefix(".")


TYPOS = [(section, path, allowed, kind)
         for section, model in SECTIONS.items()
         for path, allowed, kind in _levels(model, read_yaml(default_config_dir()
                                                             / f"{section}.yaml"))]


def test_the_typo_cases_cover_every_section_class() -> None:
    classes = {c for c in vars(config).values()
               if isinstance(c, type) and issubclass(c, config.Section)}
    assert {kind for *_, kind in TYPOS} - {None} == classes - {config.Section, config.Config}


@pytest.mark.parametrize(("section", "path", "allowed"),
                         [(s, p, a) for s, p, a, _ in TYPOS],
                         ids=[f"{s}:{_dotted(p)}" for s, p, *_ in TYPOS])
def test_a_typo_at_any_depth_names_its_dotted_key(
        tmp_path: Path, section: str, path: tuple[str | int, ...], allowed: list[str]) -> None:
    """Drop the last letter of the last key of a mapping: the error names the key with its
    full path, the keys allowed there and the key meant."""
    data = read_yaml(default_config_dir() / f"{section}.yaml")
    level = copy.deepcopy(data)
    user = level
    for part in path:
        level = level[part]
    key = list(level)[-1]
    typo = key[:-1]
    assert typo not in allowed
    level[typo] = level.pop(key)
    message = _error(tmp_path, f"{section}.yaml", yaml.safe_dump(user))
    assert (f"key '{_dotted((*path, typo))}': unknown key; allowed keys: "
            f"{', '.join(allowed)}. Did you mean '{key}'?") in message
