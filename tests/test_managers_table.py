"""The managers table: each account manager's capacity from the source, between an override in
lists.yaml and its default; checked like every contract table."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import EXAMPLE, run_cli, simulated_base
from klantwaarde.config import load_config
from klantwaarde.decisions import capacities
from klantwaarde.errors import InputError

AS_OF = "2025-06-30"
TRAIN_AS_OF = "2024-11-30"
LISTS_YAML = "capacity: {default: 4, managers: {AM003: 5}}\n"
SHEETS = ["at_risk", "win_back", "cross_sell", "loss_accounts"]  # the counts in index.csv


def test_an_override_beats_the_table_which_beats_the_default(tmp_path: Path) -> None:
    (tmp_path / "lists.yaml").write_text("capacity: {default: 4, managers: {A: 1}}\n")
    cfg = load_config(tmp_path).lists
    managers = pd.Series(["A", "B", "C", "D", "A"])
    table = {"A": 10, "B": 0, "D": 7, "Z": 3}  # Z has no customer: fine
    assert capacities(managers, cfg, table).tolist() == [1, 0, 4, 7, 1]
    assert capacities(managers, cfg).tolist() == [1, 4, 4, 4, 1]  # without the table
    # an override still has to name a manager with customers, even one the table names
    (tmp_path / "lists.yaml").write_text("capacity: {default: 4, managers: {Z: 1}}\n")
    with pytest.raises(InputError, match=r"capacity\.managers\.Z.*no scored customer"):
        capacities(managers, load_config(tmp_path).lists, table)


def test_a_bad_managers_table_names_table_column_and_rows(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(EXAMPLE, source)
    (source / "managers.csv").write_text(
        "account_manager,capacity\nAnna de Vries,3\nBram Jansen,-1\nCarla Smit,2.5\n"
        "Dirk,nan\nBram Jansen,4\n")

    result = run_cli("validate", "--source", str(source))

    output = result.stdout
    assert result.returncode == 2, output + result.stderr
    assert "Invalid: 3 problem(s) found" in output
    whole = output.split("managers.capacity: 2 rows: not a whole number of at least 0")[1]
    assert "Fix: write a count such as 0, 12 or 30" in whole
    assert "Bram Jansen       -1" in whole and "Carla Smit      2.5" in whole
    assert "managers.capacity: 1 row: not a finite number (NaN or infinity)" in output
    duplicate = output.split("managers.account_manager: 2 rows:")[1]
    assert "account_manager must be unique in managers" in duplicate
    assert "Fix: keep one row per account_manager" in duplicate
    assert duplicate.count("Bram Jansen") == 2


def test_a_source_without_the_table_says_what_it_switches_off() -> None:
    result = run_cli("validate", "--source", str(EXAMPLE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "table managers — switches off capacities per account manager" in " ".join(
        result.stdout.split())


# ------------------------------------------------------------------------- score and lists

@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A simulated base (managers AM001 to AM008, no managers table), champions promoted at
    TRAIN_AS_OF, and lists.yaml with a default of 4 and an override of 5 for AM003."""
    root = tmp_path_factory.mktemp("managers")
    base, config = simulated_base(root, root / "scores" / "scores.duckdb", automatic=True)
    (config / "lists.yaml").write_text(LISTS_YAML)
    # in a process of its own: training in this one would leave its store as MLflow's here
    result = run_cli("train", "--source", str(base), "--as-of", TRAIN_AS_OF, "--config",
                     str(config), timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return {"base": base, "config": config}


def _score_and_list(trained: dict[str, Path], source: Path, tmp_path: Path
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The month scored from ``source`` into a store of its own, and the index of its lists."""
    config = tmp_path / "config"
    shutil.copytree(trained["config"], config)
    parquet = tmp_path / "parquet"
    (config / "scoring.yaml").write_text(yaml.safe_dump(
        {"store": str(tmp_path / "scores.duckdb"), "parquet": str(parquet)}))
    for args in (["score", "--source", str(source)], ["lists", "--out", str(tmp_path / "out")]):
        result = run_cli(*args, "--as-of", AS_OF, "--config", str(config), timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
    scores = pd.read_parquet(parquet / f"as_of={AS_OF}" / "scores.parquet")
    return scores, pd.read_csv(tmp_path / "out" / "index.csv").set_index("manager")


def _within_capacity(scores: pd.DataFrame, index: pd.DataFrame) -> None:
    stored = scores.groupby("account_manager").capacity.unique().map(list).to_dict()
    assert stored == {m: [c] for m, c in index.capacity.items()}  # one capacity per manager
    for sheet in SHEETS:
        assert (index[sheet] <= index.capacity).all(), index


def test_capacities_come_from_the_managers_table(trained: dict[str, Path],
                                                 tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(trained["base"], source)
    (source / "managers.csv").write_text(
        "account_manager,capacity,team\n"
        "AM001,2,north\n"
        " AM002 ,12,north\n"  # trimmed, as customers.account_manager is
        "AM003,20,south\n"  # the override in lists.yaml wins: 5
        "AM004,,south\n"  # an empty cell: the default
        "AM099,50,south\n")  # a manager without customers

    scores, index = _score_and_list(trained, source, tmp_path)

    assert set(index.index) == {f"AM00{i}" for i in range(1, 9)}
    expected = {m: 4 for m in index.index} | {"AM001": 2, "AM002": 12, "AM003": 5}
    assert index.capacity.to_dict() == expected
    _within_capacity(scores, index)
    contacted = index.at_risk + index.cross_sell
    assert contacted["AM002"] > contacted["AM001"] > 0  # the larger capacity, more rows
    assert contacted["AM002"] > contacted.drop("AM002").max()


def test_without_the_table_lists_yaml_sets_every_capacity(trained: dict[str, Path],
                                                          tmp_path: Path) -> None:
    scores, index = _score_and_list(trained, trained["base"], tmp_path)

    assert index.capacity.to_dict() == {m: 5 if m == "AM003" else 4 for m in index.index}
    _within_capacity(scores, index)
