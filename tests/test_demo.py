"""`klantwaarde demo`: the whole product on a simulated base, in a folder of its own."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
from mlflow import MlflowClient

from conftest import run_cli
from klantwaarde.demo import MARK, prepare_folder
from klantwaarde.errors import InputError


def test_demo_runs_the_product_end_to_end(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = run_cli("demo", "--out", str(folder), "--customers", "300")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Demo done in" in result.stdout
    assert f"mlflow ui --backend-store-uri sqlite:///{folder / 'models' / 'mlflow.db'}" in \
        result.stdout
    assert (folder / "source" / "orders.parquet").exists()
    assert (folder / "profitability" / "customers.csv").exists()
    client = MlflowClient(f"sqlite:///{folder / 'models' / 'mlflow.db'}")
    for target in ("churn", "margin", "upgrade"):
        assert client.get_model_version_by_alias(f"klantwaarde-{target}", "champion")
    with duckdb.connect(str(folder / "scores" / "scores.duckdb"), read_only=True) as con:
        months = con.execute("SELECT as_of, count(*) FROM scores GROUP BY as_of").fetchall()
    assert [str(m) for m, _ in months] == ["2025-12-31"] and months[0][1] > 200
    index = pd.read_csv(folder / "lists" / "2025-12-31" / "index.csv")
    assert len(index) > 0 and index.at_risk.sum() + index.cross_sell.sum() > 0
    assert all((folder / "lists" / "2025-12-31" / "managers" / f"{s}.xlsx").exists()
               for s in index.file_stem)
    # the printed command goes on with the demo's configuration
    lists = run_cli("lists", "--as-of", "2025-12-31", "--out", str(tmp_path / "again"),
                    "--config", str(folder / "config"))
    assert lists.returncode == 0, lists.stderr


def test_the_demo_replaces_its_own_folder_and_refuses_any_other(tmp_path: Path) -> None:
    earlier = tmp_path / "demo"
    earlier.mkdir()
    (earlier / MARK).write_text("")
    (earlier / "old.txt").write_text("from an earlier demo")
    assert sorted(p.name for p in prepare_folder(earlier).iterdir()) == [MARK]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "data.csv").write_text("keep me")
    with pytest.raises(InputError, match="did not write"):
        prepare_folder(foreign)
    assert (foreign / "data.csv").read_text() == "keep me"
