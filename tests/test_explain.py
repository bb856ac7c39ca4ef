"""`klantwaarde explain`: one scored customer's scores, reasons, saved margin and history, as
text and as JSON; reasons the scores table lacks are computed by the row's model versions."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from conftest import run_cli, simulated_base
from klantwaarde.config import load_config
from klantwaarde.decisions import contact_cost
from klantwaarde.lists import build_lists
from klantwaarde.scoring.store import read_scores

AS_OF = "2025-06-30"
TRAIN_AS_OF = "2024-11-30"
TARGETS = ("churn", "margin", "upgrade")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A simulated base with champions trained at TRAIN_AS_OF and the month AS_OF scored."""
    root = tmp_path_factory.mktemp("explain")
    store = root / "scores" / "scores.duckdb"
    base, config = simulated_base(root, store, automatic=True)
    for args in (["train", "--source", str(base), "--as-of", TRAIN_AS_OF],
                 ["score", "--source", str(base), "--as-of", AS_OF]):
        result = run_cli(*args, "--config", str(config), timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
    return {"root": root, "base": base, "config": config, "parquet": store.parent / "parquet"}


def _customer(setup: dict[str, Path]) -> str:
    """The top of the at-risk sheets: its churn reasons are in the table, the others not."""
    scores = read_scores(setup["parquet"], dt.date.fromisoformat(AS_OF))
    listed = scores[scores.retention == "at risk"]
    return str(listed.sort_values("expected_saved_margin").customer_id.iat[-1])


def _explain(setup: dict[str, Path], customer: str, *more: str, config: Path | None = None
             ) -> tuple[int, str, str]:
    result = run_cli("explain", "--source", str(setup["base"]), "--as-of", AS_OF,
                     "--customer", customer, "--config", str(config or setup["config"]), *more)
    return result.returncode, result.stdout, result.stderr


def _without_reasons(setup: dict[str, Path], name: str, language: str) -> Path:
    """A config whose scores table holds the month AS_OF with every reason cleared (a table
    that keeps reasons for listed customers only), reasons worded in ``language``."""
    folder = setup["root"] / name
    parquet = folder / "parquet"
    month = f"as_of={AS_OF}"
    (parquet / month).mkdir(parents=True)
    table = pq.read_table(setup["parquet"] / month / "scores.parquet")
    for target in TARGETS:
        column = f"{target}_reasons"
        empty = pa.array([[]] * len(table), type=table.schema.field(column).type)
        table = table.set_column(table.schema.get_field_index(column), column, empty)
    pq.write_table(table, parquet / month / "scores.parquet")
    config = folder / "config"
    shutil.copytree(setup["config"], config)
    scoring = yaml.safe_load((config / "scoring.yaml").read_text())
    scoring |= {"parquet": str(parquet), "store": str(folder / "scores.duckdb"),
                "language": language}
    (config / "scoring.yaml").write_text(yaml.safe_dump(scoring))
    return config


def test_json_gives_the_scores_reasons_and_history_of_the_month(setup) -> None:
    customer = _customer(setup)
    code, stdout, stderr = _explain(setup, customer, "--format", "json")
    assert code == 0, stderr
    found = json.loads(stdout)
    row = read_scores(setup["parquet"], dt.date.fromisoformat(AS_OF)).set_index(
        "customer_id").loc[customer]
    assert found["as_of"] == AS_OF and found["customer_id"] == customer
    assert found["account_manager"] == row.account_manager
    assert {t: found["versions"][t] for t in TARGETS} == dict.fromkeys(TARGETS, 1)
    scores = found["scores"]
    assert scores["churn_probability"] == pytest.approx(row.churn_probability)
    assert scores["margin_at_risk"] == pytest.approx(row.margin_at_risk)
    assert scores["next_best_categories"] == list(row.next_best_categories)
    assert scores["tier"] == row.tier and scores["category"] == row.category
    # the at-risk sheet's ranking value: effect (at most the churn probability) x the margin of
    # 12 months - the cost of the configured contact
    cfg = load_config(setup["config"])
    assert found["versions"]["response"] == 1 and row.contact_effect == row.contact_effect
    yearly = max(row.future_net_margin, 0) * 12 / cfg.labels.horizon_months
    saved = (min(row.contact_effect, row.churn_probability) * yearly
             - contact_cost(cfg.costs, cfg.lists.contact))
    assert scores["expected_saved_margin"] == pytest.approx(saved)
    # the month's decisions, as the lists make them
    lists = build_lists(read_scores(setup["parquet"], dt.date.fromisoformat(AS_OF)),
                        dt.date.fromisoformat(AS_OF), cfg)
    on = {name: customer in set(table.customer_id) for name, table in lists.tables.items()}
    assert (scores["retention"] == "at risk") == on["at risk"]
    assert (scores["retention"] == "win-back") == on["win-back"]
    assert scores["cross_sell"] is on["cross-sell"]
    assert (scores["retention"] == "held out") == (customer in set(lists.held_out.customer_id))
    assert scores["retention"] == row.retention == "at risk"
    # the reasons score wrote (the churn model explains the at-risk sheet); the others computed
    assert found["reasons"]["churn"] == list(row.churn_reasons) and row.churn_reasons.size
    assert found["reasons_from"] == {"churn": "scores table", "margin": "computed",
                                     "upgrade": "computed"}
    assert found["reasons"]["margin"] and not row.margin_reasons.size
    months = found["history"]
    assert [m["month_end"] for m in months][-1] == AS_OF and len(months) == 12
    assert months[0]["month_end"] == "2024-07-31"
    assert {"revenue", "gross_margin", "cost_to_serve", "net_margin", "orders", "order_lines",
            "visits", "calls", "contacts", "complaints"} <= set(months[0])
    assert sum(m["revenue"] for m in months) == pytest.approx(row.revenue, rel=1e-6)
    for m in months:
        assert m["net_margin"] == pytest.approx(m["gross_margin"] - m["cost_to_serve"])


def test_text_shows_the_scores_reasons_and_months(setup) -> None:
    customer = _customer(setup)
    code, stdout, stderr = _explain(setup, customer)
    assert code == 0, stderr
    assert f"Customer {customer}" in stdout and "churn v1" in stdout
    for words in ("churn_probability", "expected_saved_margin", "Why churn", "Why margin",
                  "Why upgrade", "the last 12 months", AS_OF):
        assert words in stdout
    row = read_scores(setup["parquet"], dt.date.fromisoformat(AS_OF)).set_index(
        "customer_id").loc[customer]
    assert all(reason in stdout for reason in row.churn_reasons)
    assert "Traceback" not in stderr


def test_reasons_the_table_lacks_are_computed_as_score_computed_them(setup) -> None:
    customer = _customer(setup)
    stored = json.loads(_explain(setup, customer, "--format", "json")[1])["reasons"]
    config = _without_reasons(setup, "unlisted", "en")
    code, stdout, stderr = _explain(setup, customer, "--format", "json", config=config)
    assert code == 0, stderr
    found = json.loads(stdout)
    assert found["reasons_from"] == dict.fromkeys(TARGETS, "computed")
    assert found["reasons"] == stored


def test_a_dutch_config_gives_dutch_reasons(setup) -> None:
    customer = _customer(setup)
    config = _without_reasons(setup, "dutch", "nl")
    code, stdout, stderr = _explain(setup, customer, "--format", "json", config=config)
    assert code == 0, stderr
    words = " ".join(r for reasons in json.loads(stdout)["reasons"].values() for r in reasons)
    english = " ".join(json.loads(_explain(setup, customer, "--format", "json")[1])[
        "reasons"]["churn"])
    assert words and words != english
    assert any(w in words for w in ("geen", "maanden", "dagen", "klanten", "omzet", "klacht"))
    assert not any(w in words for w in (" no ", "months", " days", "customers", "revenue"))


def test_a_customer_not_scored_names_it_the_count_and_the_fix(setup) -> None:
    code, stdout, stderr = _explain(setup, "C9999999")
    assert code == 2 and not stdout
    message = " ".join(stderr.split())
    assert "C9999999" in message and "customers were, for example C" in message
    assert "klantwaarde score" in message and "Fix" in message
    assert "Traceback" not in stderr


def test_a_month_not_scored_names_the_months_that_are(setup) -> None:
    result = run_cli("explain", "--source", str(setup["base"]), "--as-of", "2025-05-31",
                     "--customer", _customer(setup), "--config", str(setup["config"]))
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "no scores at 2025-05-31" in message and AS_OF in message
    assert "Traceback" not in result.stderr
