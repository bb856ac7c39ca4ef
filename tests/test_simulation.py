"""The simulator: the figures the literature describes, a working oracle, determinism, safe output.

The figures are measured on a generated base of 4,000 customers over 36 months, the way a user
would: from the exported tables with DuckDB, costs applied by hand with the shipped cost rates.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from conftest import run_cli, snapshot
from klantwaarde.config import load_config
from klantwaarde.profitability.report import build_report
from klantwaarde.simulation import simulate
from klantwaarde.sources import open_source
from klantwaarde.validation import validate_source

CUSTOMERS, MONTHS, SEED = 4000, 36, 20261123
# The oracle churn AUC of this base (true hazard at the start of month 25 against churn in the
# next six months), written down so that the models of later releases can be measured against it.
ORACLE_AUC = 0.72


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "base"
    simulate(CUSTOMERS, MONTHS, SEED, out, load_config())
    return out


@pytest.fixture(scope="module")
def db(base: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for table in ("orders", "invoices", "interactions", "complaints", "customers"):
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM '{base}/{table}.parquet'")
    con.execute(f"CREATE VIEW months AS SELECT * FROM '{base}/truth/months.parquet'")
    return con


def _last_year(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per customer with orders in the last 12 months: revenue, cost-to-serve and net margin."""
    k = load_config().costs
    window = "BETWEEN DATE '2025-01-01' AND DATE '2025-12-31'"
    return con.execute(f"""
        WITH lines AS (SELECT * FROM orders WHERE order_date {window}),
        per_order AS (SELECT customer_id, order_id, sum(gross_amount - discount_amount) AS net
                      FROM lines GROUP BY ALL),
        o AS (SELECT customer_id, sum(gross_amount) AS revenue,
                     sum(gross_amount - discount_amount - cost_amount) AS margin,
                     count(*) AS n_lines FROM lines GROUP BY ALL),
        po AS (SELECT customer_id, count(*) AS n_orders,
                      count(*) FILTER (net > 0 AND net < {k.franco_threshold}) AS franco
               FROM per_order GROUP BY ALL),
        late AS (SELECT customer_id, amount, greatest(least(coalesce(paid_date, DATE '2025-12-31'),
                        DATE '2025-12-31') - due_date, 0) AS days,
                        -- reminders: the month ends after the due date, before the payment
                        (SELECT count(*) FROM range(DATE '2023-01-31', DATE '2026-01-01',
                                                    INTERVAL 1 MONTH) r(month)
                         WHERE last_day(month) > due_date AND last_day(month) <= DATE '2025-12-31'
                           AND (paid_date IS NULL OR last_day(month) < paid_date)) AS sent
                 FROM invoices WHERE invoice_date {window}),
        inv AS (SELECT customer_id, count(*) AS n_invoices,
                       sum(greatest(amount, 0) * days) * {k.late_payment_interest_per_year} / 365
                       + sum(least(sent, {k.max_reminders})) FILTER (amount > 0) * {k.per_reminder}
                         AS late_payment
                FROM late GROUP BY ALL),
        it AS (SELECT customer_id, count(*) FILTER (kind = 'visit') AS visits,
                      count(*) FILTER (kind = 'call') AS calls
               FROM interactions WHERE date {window} GROUP BY ALL),
        cp AS (SELECT customer_id, count(*) AS n_complaints FROM complaints
               WHERE opened_on {window} GROUP BY ALL),
        costs AS (
            SELECT revenue, margin,
                   n_orders * {k.per_order} + n_lines * {k.per_order_line}
                   + coalesce(n_invoices, 0) * {k.per_invoice} + franco * {k.per_franco_shipment}
                   + coalesce(visits, 0) * {k.per_visit} + coalesce(calls, 0) * {k.per_call}
                   + coalesce(n_complaints, 0) * {k.per_complaint}
                   + coalesce(late_payment, 0) AS cost_to_serve
            FROM o JOIN po USING (customer_id) LEFT JOIN inv USING (customer_id)
            LEFT JOIN it USING (customer_id) LEFT JOIN cp USING (customer_id))
        SELECT revenue, cost_to_serve, margin - cost_to_serve AS net FROM costs
    """).df()


def test_revenue_is_concentrated_like_a_customer_pyramid(db: duckdb.DuckDBPyConnection) -> None:
    revenue = np.sort(_last_year(db).revenue.to_numpy())[::-1]
    n = len(revenue)
    top5 = revenue[: n // 20].sum() / revenue.sum()
    top20 = revenue[: n // 5].sum() / revenue.sum()
    # targets 40% and 80% (simulate.yaml: a log-normal size gives about 44% and 75%)
    assert 0.34 <= top5 <= 0.52, top5
    assert 0.70 <= top20 <= 0.90, top20


def economics(customers: pd.DataFrame) -> dict[str, float]:
    """The figures of a B2B base's profitability (customers: revenue, cost_to_serve, net)."""
    active = customers[customers.revenue > 0]
    net = np.sort(active.net.to_numpy())[::-1]
    smallest = active.sort_values("revenue", kind="stable")
    bottom = smallest[smallest.revenue.cumsum() <= 0.2 * active.revenue.sum()]
    largest = active.revenue.sort_values(ascending=False)
    return {"whale_peak": np.cumsum(net).max() / net.sum(),
            "bottom_margin": bottom.net.sum() / bottom.revenue.sum(),
            "bottom_cost_share": bottom.cost_to_serve.sum() / active.cost_to_serve.sum(),
            "loss_share": (active.net < 0).mean(),
            "top20_revenue": largest[: -(-len(largest) // 5)].sum() / largest.sum()}


def assert_b2b_economics(figures: dict[str, float]) -> None:
    """The targets of simulate.yaml: the whale curve and the loss-making tail of a B2B base."""
    assert 1.30 <= figures["whale_peak"] <= 2.50, figures
    assert -0.30 <= figures["bottom_margin"] <= -0.05, figures
    assert figures["bottom_cost_share"] >= 0.50, figures
    assert 0.15 <= figures["loss_share"] <= 0.30, figures
    assert 0.70 <= figures["top20_revenue"] <= 0.90, figures


def test_the_base_has_the_economics_of_a_b2b_wholesaler(db: duckdb.DuckDBPyConnection) -> None:
    assert_b2b_economics(economics(_last_year(db)))


def test_loss_accounts_lose_on_visits_small_orders_stale_discounts_and_late_payment(
        base: Path) -> None:
    config = load_config()
    report = build_report(open_source(str(base), config.source), dt.date(2025, 12, 31), config)
    customers = report.customers.rename(columns={"net_margin": "net"})
    # the product's own figures agree with the ones computed by hand from the tables
    assert_b2b_economics(economics(customers))
    loss = customers[customers.category == "loss account"]
    drivers = loss.loss_driver.value_counts() / len(loss)
    for driver in ("visits", "small_orders", "stale_discount", "late_payment"):
        assert drivers.get(driver, 0) >= 0.05, drivers


def test_yearly_churn_rate(db: duckdb.DuckDBPyConnection) -> None:
    rates = []
    for year in range(3):
        active, churned = db.execute(f"""
            WITH start AS (SELECT customer_id FROM months
                           WHERE month = DATE '2023-01-01' + INTERVAL {12 * year} MONTH
                             AND state = 'active'),
            gone AS (SELECT DISTINCT customer_id FROM months WHERE churn IS NOT NULL
                     AND month >= DATE '2023-01-01' + INTERVAL {12 * year} MONTH
                     AND month < DATE '2023-01-01' + INTERVAL {12 * year + 12} MONTH)
            SELECT count(*), count(gone.customer_id) FROM start LEFT JOIN gone USING (customer_id)
        """).fetchone()
        rates.append(churned / active)
    # target 8 to 11% a year (simulate.yaml, churn.base_monthly_hazard)
    assert all(0.06 <= r <= 0.15 for r in rates), rates


def test_churn_comes_as_stops_and_as_drying_up(db: duckdb.DuckDBPyConnection) -> None:
    kinds = dict(db.execute("SELECT churn, count(*) FROM months WHERE churn IS NOT NULL "
                            "GROUP BY ALL").fetchall())
    assert 0.3 <= kinds["stop"] / (kinds["stop"] + kinds["dry_up"]) <= 0.5
    # drying up shows in the orders: revenue in the three months after the onset falls
    before, after = db.execute("""
        WITH onset AS (SELECT customer_id, month FROM months WHERE churn = 'dry_up'
                       AND month BETWEEN DATE '2023-07-01' AND DATE '2025-06-01'),
        rev AS (SELECT o.customer_id,
                       sum(gross_amount) FILTER (order_date >= month - INTERVAL 6 MONTH
                                                 AND order_date < month) / 2 AS before,
                       sum(gross_amount) FILTER (order_date >= month
                                                 AND order_date < month + INTERVAL 3 MONTH) AS after
                FROM orders o JOIN onset USING (customer_id) GROUP BY ALL)
        SELECT sum(before), sum(after) FROM rev
    """).fetchone()
    assert after < 0.75 * before
    # a churned customer orders no more
    churned, ordering = db.execute("""
        SELECT count(DISTINCT m.customer_id), count(DISTINCT o.customer_id)
        FROM months m LEFT JOIN orders o ON o.customer_id = m.customer_id
             AND o.order_date >= m.month AND o.order_date < m.month + INTERVAL 1 MONTH
        WHERE m.state = 'churned'
    """).fetchone()
    assert churned > 100 and ordering == 0


def test_the_oracle_ranks_churners_well_above_chance(db: duckdb.DuckDBPyConnection) -> None:
    scored = db.execute("""
        WITH snap AS (SELECT customer_id, hazard FROM months
                    WHERE month = DATE '2025-01-01' AND state = 'active'),
        label AS (SELECT customer_id, bool_or(churn IS NOT NULL) AS churned FROM months
                  WHERE month >= DATE '2025-01-01' AND month < DATE '2025-07-01' GROUP BY ALL)
        SELECT hazard, coalesce(churned, false) AS churned
        FROM snap LEFT JOIN label USING (customer_id)
    """).fetchnumpy()
    auc = _auc(scored["hazard"], scored["churned"])
    assert auc >= ORACLE_AUC - 0.05, auc
    assert 0.02 <= scored["churned"].mean() <= 0.10


def test_neglect_complaints_and_broken_promises_drive_churn_not_price(
        db: duckdb.DuckDBPyConnection) -> None:
    drivers = dict(db.execute("SELECT driver, count(*) FROM months WHERE churn IS NOT NULL "
                              "AND state = 'active' GROUP BY ALL").fetchall())
    service = drivers.get("neglect", 0) + drivers.get("open_complaints", 0) + drivers.get(
        "broken_promises", 0)
    assert service > 10 * drivers.get("price", 0)
    assert drivers.get("neglect", 0) == max(v for k, v in drivers.items() if k != "none")


def test_contact_lowers_the_hazard_more_for_some_accounts(db: duckdb.DuckDBPyConnection,
                                                          base: Path) -> None:
    effect = db.execute(f"""
        SELECT ln(m.hazard / (1 - m.hazard))
               - ln(m.hazard_if_contacted / (1 - m.hazard_if_contacted)) AS log_odds,
               t.responsiveness
        FROM months m JOIN '{base}/truth/customers.parquet' t USING (customer_id)
        WHERE m.month = DATE '2025-01-01' AND m.state = 'active'
    """).fetchnumpy()
    assert (effect["log_odds"] >= -1e-9).all()
    responsive = effect["responsiveness"] > np.median(effect["responsiveness"])
    # the more responsive half gains at least twice as much from a contact
    assert effect["log_odds"][responsive].mean() > 2 * effect["log_odds"][~responsive].mean()


def test_contact_leads_to_cross_sell(base: Path) -> None:
    adoptions = duckdb.sql(f"SELECT count(*), count(*) FILTER (after_contact) "
                           f"FROM '{base}/truth/adoptions.parquet'").fetchone()
    assert adoptions[0] > 1000
    # contact happens in a minority of customer-months, yet brings a large share of adoptions
    assert adoptions[1] / adoptions[0] > 0.3


def test_the_protected_attribute_has_no_effect(db: duckdb.DuckDBPyConnection) -> None:
    rates = dict(db.execute("""
        SELECT gender, avg((churn IS NOT NULL)::int) FROM months JOIN customers USING (customer_id)
        WHERE state = 'active' AND gender IN ('female', 'male') GROUP BY ALL
    """).fetchall())
    assert abs(rates["female"] - rates["male"]) < 0.004, rates


def test_the_simulated_source_meets_the_contract(base: Path) -> None:
    cfg = load_config()
    report = validate_source(open_source(str(base), cfg.source), cfg)
    assert report.ok, report.errors
    assert {s.spec.name for s in report.summaries} == {
        "orders", "customers", "invoices", "interactions", "complaints", "products"}
    assert any("truth/" in notice for notice in report.notices)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_same_seed_same_bytes(tmp_path: Path, fmt: str) -> None:
    args = ["simulate", "--customers", "300", "--months", "14", "--format", fmt]
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        result = run_cli(*args, "--seed", seed, "--out", str(tmp_path / name))
        assert result.returncode == 0, result.stderr
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert len(files) == 6 + 4  # six contract tables, three truth tables and simulation.yaml
    for file in files:
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file
    orders = f"orders.{fmt}"
    assert (tmp_path / "a" / orders).read_bytes() != (tmp_path / "c" / orders).read_bytes()


def test_duckdb_format_is_a_valid_source(tmp_path: Path) -> None:
    out = tmp_path / "db"
    result = run_cli("simulate", "--customers", "200", "--months", "12", "--seed", "1",
                     "--format", "duckdb", "--start", "2021-03-01", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert f"--source {out / 'klantwaarde.duckdb'}" in result.stdout
    assert "2021-03-01 to 2022-02-28" in result.stdout
    check = run_cli("validate", "--source", str(out / "klantwaarde.duckdb"))
    assert check.returncode == 0, check.stdout + check.stderr


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "orders.csv").write_text("customer_id,order_date,gross_amount\n")
    before = snapshot(tmp_path)
    result = run_cli("simulate", "--customers", "50", "--months", "3", "--seed", "1",
                     "--out", str(out))
    assert result.returncode == 2
    assert "already exists" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(tmp_path) == before


def test_a_killed_run_leaves_no_source_behind(tmp_path: Path) -> None:
    out = tmp_path / "big"
    process = subprocess.Popen([sys.executable, "-m", "klantwaarde", "simulate", "--customers",
                                "400000", "--months", "36", "--seed", "1", "--out", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".big.partial-*/orders.parquet")):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.1)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not out.exists()
    # the next run clears the abandoned staging folder and completes
    result = run_cli("simulate", "--customers", "50", "--months", "3", "--seed", "1",
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert not list(tmp_path.glob(".big.partial-*"))


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic (tied scores share their mean rank)."""
    ranks = pd.Series(score).rank().to_numpy()
    positives = label.astype(bool)
    n1, n0 = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
