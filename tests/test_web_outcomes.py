"""Outcomes recorded on the page are part of the treatment record that training and evaluate
read; the users of the page are managed from the command line."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from starlette.testclient import TestClient

from conftest import EXAMPLE, run_cli
from klantwaarde.config import load_config
from klantwaarde.features import training_set
from klantwaarde.scoring.store import SCHEMA, write_scores
from klantwaarde.validation import open_valid_source
from klantwaarde.web.app import create_app
from webdata import PASSWORD

AS_OF = dt.date(2024, 6, 30)
CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def _example_config(root: Path) -> Path:
    """The example source's customers scored at AS_OF, each on a sheet (no control group), a
    label horizon of three months."""
    folder = root / "config"
    folder.mkdir()
    store = root / "scores" / "scores.duckdb"
    (folder / "scoring.yaml").write_text(yaml.safe_dump(
        {"store": str(store), "parquet": str(store.parent / "parquet")}))
    (folder / "lists.yaml").write_text("control_share: 0\nat_risk_min_probability: 0\n")
    (folder / "labels.yaml").write_text("horizon_months: 3\n")
    rows = [{"as_of": AS_OF, "customer_id": f"C00{i}", "account_manager": manager,
             "churn_probability": 0.5, "future_net_margin": 1000.0, "margin_at_risk": 500.0,
             "category": "large account", "net_margin": 1000.0, "revenue": 5000.0,
             "days_since_last_order": 10}
            for i, manager in enumerate(["Anna de Vries", "Anna de Vries", "Bram Jansen",
                                         "Bram Jansen", "Carla Smit", "Carla Smit"], start=1)]
    write_scores(store, store.parent / "parquet", AS_OF,
                 pa.Table.from_pylist(rows, schema=SCHEMA))
    return folder


def _contacted(folder: Path) -> dict[str, bool]:
    """label_contacted at AS_OF: the treatment the response model learns from and evaluate
    measures (a contact in the month after as_of)."""
    cfg = load_config(folder)
    fs = training_set(open_valid_source(str(EXAMPLE), cfg), cfg, dt.date(2024, 9, 30), 1)
    table = fs.table.to_pandas() if hasattr(fs.table, "to_pandas") else fs.table
    return dict(zip(table.customer_id, table.label_contacted.astype(bool), strict=True))


def test_an_outcome_recorded_on_the_page_is_a_contact_for_training_and_evaluate(
        tmp_path: Path) -> None:
    folder = _example_config(tmp_path)
    before = _contacted(folder)
    assert before["C005"] is False and before["C006"] is True  # C006 had a visit in July
    added = run_cli("users", "add", "carla", "--role", "manager", "--manager", "Carla Smit",
                    "--password-stdin", "--config", str(folder), input_text=PASSWORD)
    assert added.returncode == 0, added.stderr
    client = TestClient(create_app(load_config(folder)))
    token = CSRF.search(client.get("/login").text).group(1)
    client.post("/login", data={"name": "carla", "password": PASSWORD, "csrf": token})
    token = CSRF.search(client.get("/month").text).group(1)
    for customer, result in (("C005", "saved"), ("C006", "not reached")):
        done = client.post("/outcomes", data={
            "csrf": token, "customer_id": customer, "kind": "call",
            "contact_date": "2024-07-10", "result": result}, follow_redirects=False)
        assert done.status_code == 303, done.text
    after = _contacted(folder)
    assert after["C005"] is True  # the recorded call is a contact
    assert {c: v for c, v in after.items() if c != "C005"} == \
        {c: v for c, v in before.items() if c != "C005"}  # an attempt not reached is none


def test_users_are_added_listed_and_disabled_with_clear_errors(tmp_path: Path) -> None:
    folder = _example_config(tmp_path)
    config = ["--config", str(folder)]

    def users(*args: str, password: str = PASSWORD):
        return run_cli("users", *args, *config, input_text=password)

    assert users("add", "anna", "--role", "manager", "--manager", "Anna de Vries",
                 "--password-stdin").returncode == 0
    assert users("add", "boss", "--role", "admin", "--password-stdin").returncode == 0
    unknown = users("add", "x", "--role", "manager", "--manager", "Anna de Vries",
                    "--manager", "Ana de Vries", "--password-stdin")
    assert unknown.returncode == 2
    assert "'Ana de Vries'" in unknown.stderr and "Bram Jansen" in unknown.stderr
    assert "Did you mean 'Anna de Vries'?" in " ".join(unknown.stderr.split())
    twice = users("add", "anna", "--role", "lead", "--manager", "Bram Jansen",
                  "--password-stdin")
    assert twice.returncode == 2 and "exists already" in twice.stderr
    empty = users("add", "y", "--role", "manager", "--manager", "Bram Jansen",
                  "--password-stdin", password="")
    assert empty.returncode == 2 and "password is empty" in empty.stderr
    no_stdin = users("add", "z", "--role", "admin")
    assert no_stdin.returncode == 2 and "--password-stdin" in no_stdin.stderr
    lead = users("add", "z", "--role", "lead", "--password-stdin")
    assert lead.returncode == 2 and "at least one account-manager code" in lead.stderr
    assert users("disable", "anna").returncode == 0
    missing = users("disable", "nobody")
    assert missing.returncode == 2 and "no user 'nobody'" in missing.stderr
    listed = users("list")
    assert listed.returncode == 0
    assert re.search(r"anna\s+manager\s+Anna de Vries\s+disabled\n", listed.stdout)
    assert re.search(r"boss\s+admin\s+all\n", listed.stdout)
    assert "Traceback" not in unknown.stderr + twice.stderr + empty.stderr


@pytest.mark.parametrize("role", ["manager", "lead", "admin"])
def test_users_add_refuses_a_short_password(tmp_path: Path, role: str) -> None:
    folder = _example_config(tmp_path)
    args = ["--manager", "Bram Jansen"] if role != "admin" else []
    short = run_cli("users", "add", "a", "--role", role, *args, "--password-stdin",
                    "--config", str(folder), input_text="short")
    assert short.returncode == 2 and "at least 8" in short.stderr


def test_the_demo_makes_a_user_per_manager_a_lead_and_an_admin(tmp_path: Path,
                                                                 capsys) -> None:
    from klantwaarde import cli
    from webdata import MANAGERS, scored_base

    scored_base(tmp_path)
    cli._demo_users(tmp_path / "config", list(MANAGERS[:3]))
    printed = capsys.readouterr().out
    assert f"klantwaarde serve --config {tmp_path / 'config'}" in printed
    passwords = dict(re.findall(r"│ (\w+)\s+│ \w+\s+│ [^│]*│ (\S+)\s+│", printed))
    assert set(passwords) == {"am001", "am002", "am003", "lead", "admin"}
    assert len(set(passwords.values())) == 5
    client = TestClient(create_app(load_config(tmp_path / "config")))
    token = CSRF.search(client.get("/login").text).group(1)
    assert client.post("/login", data={"name": "lead", "password": passwords["lead"],
                                       "csrf": token}, follow_redirects=False
                       ).status_code == 303
    team = client.get("/team").text
    assert re.findall(r'manager=(AM\d+)">', team) == ["AM001", "AM002", "AM003"]
