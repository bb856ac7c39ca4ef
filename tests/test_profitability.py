"""Customer profitability: a hand-built source computed by hand, properties on random data, the
segments, the command, and the figures on a simulated base."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_cli, snapshot
from klantwaarde.config import load_config
from klantwaarde.periods import months_before
from klantwaarde.profitability.margins import DRIVERS, customer_margins
from klantwaarde.profitability.report import build_report
from klantwaarde.simulation import simulate
from klantwaarde.sources import open_source

AS_OF = dt.date(2024, 12, 31)
RATE = 0.08 / 365  # costs.yaml: late_payment_interest_per_year 0.08
REMINDER = 25  # costs.yaml: per_reminder, at each month end an invoice is overdue

ORDERS = """customer_id,order_id,order_date,gross_amount,discount_amount,cost_amount
C1,0,2023-12-31,5000,0,3000
C1,1,2024-03-01,1000,50,600
C1,1,2024-03-01,200,0,120
C1,2,2024-06-10,100,0,70
C1,9,2025-01-01,7000,0,4000
C3,3,2024-04-01,100000,25000,60000
""" + "".join(f"C4,{10 + i},2024-0{1 + i % 9}-15,100,0,75\n" for i in range(10))

INVOICES = """customer_id,invoice_id,invoice_date,amount,due_date,paid_date
C1,I1,2024-03-01,1150,2024-03-31,2024-04-30
C1,I2,2024-06-10,100,2024-07-10,
C1,I9,2025-01-01,7000,2025-01-31,
C3,I3,2024-04-01,75000,2024-05-01,2024-04-20
"""

INTERACTIONS = """customer_id,date,kind
C1,2024-05-01,visit
C1,2024-07-01,call
C1,2024-08-01,email
C1,2025-02-01,visit
C2,2024-02-01,visit
C2,2024-03-01,Meeting
"""

COMPLAINTS = "customer_id,opened_on\nC1,2024-09-01\nC1,2023-06-01\n"
CUSTOMERS = ("customer_id,account_manager,strategic\nC1,Anna,no\nC2,Anna,no\nC3,Bram,yes\n"
             "C4,Bram,no\n")

# Every figure of every customer, by hand with the rates of costs.yaml.
C1_LATE = [30, (AS_OF - dt.date(2024, 7, 10)).days]  # I1 paid 30 days late, I2 unpaid
# I1 is overdue at the end of March 2024 (due the 31st: not yet) and April (paid the 30th: not
# any more), so it gets no reminder; I2, due 10 July and open, one at each month end from July to
# December, capped at max_reminders 6
C1_LATE_PAYMENT = (1150 * C1_LATE[0] + 100 * C1_LATE[1]) * RATE + 6 * REMINDER
EXPECTED = {
    # revenue, discounts, cost of goods, then the drivers in DRIVERS order
    "C1": dict(revenue=1300, discounts=50, cost_of_goods=790, cost_orders=2 * 15,
               cost_order_lines=3 * 1.5, cost_invoices=2 * 5, cost_franco=1 * 20,
               cost_visits=1 * 400, cost_calls=1 * 12, cost_complaints=1 * 80,
               cost_late_payment=C1_LATE_PAYMENT),
    "C2": dict(revenue=0, discounts=0, cost_of_goods=0, cost_orders=0, cost_order_lines=0,
               cost_invoices=0, cost_franco=0, cost_visits=2 * 400, cost_calls=0,
               cost_complaints=0, cost_late_payment=0),
    "C3": dict(revenue=100000, discounts=25000, cost_of_goods=60000, cost_orders=15,
               cost_order_lines=1.5, cost_invoices=5, cost_franco=0, cost_visits=0, cost_calls=0,
               cost_complaints=0, cost_late_payment=0),
    "C4": dict(revenue=1000, discounts=0, cost_of_goods=750, cost_orders=10 * 15,
               cost_order_lines=10 * 1.5, cost_invoices=0, cost_franco=10 * 20, cost_visits=0,
               cost_calls=0, cost_complaints=0, cost_late_payment=0),
}


def _write(folder: Path, **tables: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        (folder / f"{name}.csv").write_text(text)
    return folder


@pytest.fixture
def hand_built(tmp_path: Path) -> Path:
    return _write(tmp_path / "src", orders=ORDERS, invoices=INVOICES, interactions=INTERACTIONS,
                  complaints=COMPLAINTS, customers=CUSTOMERS)


def test_every_driver_of_every_customer_matches_the_hand_computation(hand_built: Path) -> None:
    cfg = load_config()
    margins = customer_margins(open_source(str(hand_built), cfg.source), AS_OF, cfg, 12)
    got = margins.table.to_pandas().set_index("customer_id")
    assert margins.start == dt.date(2023, 12, 31) and margins.skipped == ()
    assert sorted(got.index) == sorted(EXPECTED)
    for customer, figures in EXPECTED.items():
        row = got.loc[customer]
        for column, value in figures.items():
            assert row[column] == pytest.approx(value, abs=1e-9), (customer, column)
        costs = sum(figures[f"cost_{d}"] for d in DRIVERS)
        gross = figures["revenue"] - figures["discounts"] - figures["cost_of_goods"]
        assert row.cost_to_serve == pytest.approx(costs, abs=1e-9)
        assert row.net_margin == pytest.approx(gross - costs, abs=1e-9), customer
    # C3: 100,000 a year warrants 20% (costs.yaml bands); it gets 25%: 5,000 stale
    assert got.loc["C3", "warranted_discount_pct"] == 0.20
    assert got.loc["C3", "stale_discount"] == pytest.approx(5000)
    assert got.loc["C1", "stale_discount"] == pytest.approx(50)  # 1,300 a year warrants 0%
    assert got.loc["C4", "n_franco"] == 10 and got.loc["C1", "n_franco"] == 1


def test_segments_qualification_and_remedies(hand_built: Path) -> None:
    cfg = load_config()
    report = build_report(open_source(str(hand_built), cfg.source), AS_OF, cfg)
    c = report.customers.set_index("customer_id")
    assert list(c.tier) == ["small", "inactive", "top", "small"]
    assert list(c.category) == ["loss account", "loss account", "key account", "loss account"]
    assert c.loc["C3", "cell"] == "significant, profitable, strategic"
    assert c.loc["C3", "policy"] == "keep and invest: a key account"
    # C1 loses about 103: replacing its visit by telesales saves 388
    assert c.loc["C1", "loss_driver"] == "visits"
    assert c.loc["C1", "remedy"] == "replace field visits by telesales"
    # C4's ten franco orders: a minimum order size saves 10 x (20 + 15) = 350 > 115
    assert c.loc["C4", "loss_driver"] == "small_orders"
    assert c.loc["C4", "remedy"] == "set a minimum order size or an order surcharge"
    # C2 only gets visits: telesales saves 776 of its 800 gap
    assert c.loc["C2", "remedy"].startswith("let it go: the remedies close EUR 776 of a EUR 800")
    assert pd.isna(c.loc["C3", "remedy"])
    net = np.array([EXPECTED_NET[k] for k in ("C3", "C1", "C4", "C2")])
    assert report.whale.peak == pytest.approx(net[0] / net.sum())
    assert report.whale.profit_makers_share == 0.25 and report.whale.loss_share == 0.75
    # the tail: C4 and C1 make the last 20% of the revenue of the customers with revenue
    tail = report.concentration
    assert tail.tail_customer_share == pytest.approx(2 / 3)
    assert tail.tail_margin_pct == pytest.approx(
        (EXPECTED_NET["C4"] + EXPECTED_NET["C1"]) / 2300)
    cost = {k: sum(v[f"cost_{d}"] for d in DRIVERS) for k, v in EXPECTED.items()}
    assert tail.tail_cost_share == pytest.approx(
        (cost["C4"] + cost["C1"]) / (cost["C1"] + cost["C3"] + cost["C4"]))
    assert tail.top20_revenue_share == pytest.approx(100000 / 102300)  # C3, one of three


EXPECTED_NET = {k: v["revenue"] - v["discounts"] - v["cost_of_goods"]
                - sum(v[f"cost_{d}"] for d in DRIVERS) for k, v in EXPECTED.items()}


def test_absent_tables_are_skipped_not_zeroed(tmp_path: Path) -> None:
    folder = _write(tmp_path / "bare", orders="customer_id,order_date,gross_amount\n"
                    "C1,2024-05-01,300\nC1,2024-06-01,100\n")
    cfg = load_config()
    margins = customer_margins(open_source(str(folder), cfg.source), AS_OF, cfg, 12)
    row = margins.table.to_pandas().iloc[0]
    for driver in ("invoices", "visits", "calls", "complaints", "late_payment"):
        assert pd.isna(row[f"cost_{driver}"]), driver
    assert pd.isna(row.discounts) and pd.isna(row.stale_discount)
    assert row.cost_of_goods == pytest.approx(400 * 0.7)  # the default gross margin of 30%
    # every line is an order; one of them is below the franco threshold
    assert row.cost_to_serve == pytest.approx(2 * 15 + 2 * 1.5 + 1 * 20)
    assert any(s.startswith("cost of goods") for s in margins.skipped)
    assert any(s.startswith("visits, calls") for s in margins.skipped)


def test_months_before_keeps_the_day_or_takes_the_month_end() -> None:
    assert months_before(dt.date(2024, 12, 31), 12) == dt.date(2023, 12, 31)
    assert months_before(dt.date(2024, 3, 31), 1) == dt.date(2024, 2, 29)
    assert months_before(dt.date(2024, 1, 15), 3) == dt.date(2023, 10, 15)
    assert months_before(dt.date(2024, 4, 30), 1) == dt.date(2024, 3, 31)  # a month end
    assert months_before(dt.date(2025, 2, 28), 12) == dt.date(2024, 2, 29)
    assert months_before(dt.date(2024, 3, 30), 1) == dt.date(2024, 2, 29)


rows = st.lists(st.tuples(st.sampled_from(["A", "B", "C"]), st.integers(0, 500),
                          st.integers(-200, 3000), st.integers(0, 300), st.integers(1, 4)),
                min_size=1, max_size=25)
contacts = st.lists(st.tuples(st.sampled_from(["A", "B", "D"]), st.integers(0, 500),
                              st.sampled_from(["visit", "call", "email", "meeting"])),
                    max_size=10)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=rows, touches=contacts, late_lines=rows)
def test_parts_add_up_and_later_events_change_nothing(tmp_path_factory: pytest.TempPathFactory,
                                                      lines: list, touches: list,
                                                      late_lines: list) -> None:
    """For every customer the drivers add up to cost-to-serve and the parts to net margin; rows
    after as_of (and their order in the file) change no figure."""
    start = dt.date(2024, 1, 1)
    orders = [(c, f"O{c}{n}", start + dt.timedelta(d), g, disc, g * 0.6)
              for c, d, g, disc, n in lines]
    later = [(c, f"L{c}{n}", AS_OF + dt.timedelta(1 + d), g, disc, g * 0.6)
             for c, d, g, disc, n in late_lines]
    cfg = load_config()

    def margins(order_rows: list) -> pd.DataFrame:
        folder = tmp_path_factory.mktemp("prop")
        pd.DataFrame(order_rows, columns=["customer_id", "order_id", "order_date", "gross_amount",
                                          "discount_amount", "cost_amount"]).to_parquet(
            folder / "orders.parquet")
        pd.DataFrame([(c, start + dt.timedelta(d), k) for c, d, k in touches] or
                     [("A", AS_OF + dt.timedelta(5), "visit")],
                     columns=["customer_id", "date", "kind"]).to_parquet(
            folder / "interactions.parquet")
        source = open_source(str(folder), cfg.source)
        return customer_margins(source, AS_OF, cfg, 12).table.to_pandas()

    got = margins(orders)
    drivers = got[[f"cost_{d}" for d in DRIVERS]].fillna(0).sum(axis=1)
    assert np.allclose(got.cost_to_serve, drivers)
    assert np.allclose(got.net_margin, got.revenue - got.discounts.fillna(0) - got.cost_of_goods
                       - got.cost_to_serve)
    shuffled = margins(later + orders[::-1])
    pd.testing.assert_frame_equal(got, shuffled, check_exact=False, rtol=1e-12)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("psim") / "base"
    simulate(3000, 36, 7, out, load_config())
    return out


def test_headline_figures_on_simulated_data(simulated: Path) -> None:
    cfg = load_config()
    report = build_report(open_source(str(simulated), cfg.source), dt.date(2025, 12, 31), cfg)
    h = report.headline
    # simulate.yaml: about a fifth to a quarter of customers lose money after cost-to-serve
    assert 0.15 <= h["loss_share"] <= 0.35, h
    assert 0 < h["net_margin_pct"] < 0.35
    assert report.whale.peak > 1
    c = report.customers
    top = report.segments.query("segment == 'tier' and value == 'top'").iloc[0]
    assert top.customer_share < 0.06  # a few percent of customers make 40% of revenue
    # stale discounts: customers the simulator gave an old turnover's discount show them
    truth = duckdb.sql(f"SELECT customer_id, discount > warranted_discount AS stale "
                       f"FROM '{simulated}/truth/customers.parquet'").df()
    joined = c.merge(truth, on="customer_id")
    stale_found = joined.stale_discount > 0
    assert stale_found[joined.stale].mean() > 0.8
    assert stale_found[~joined.stale].mean() < 0.35


def test_command_writes_tables_and_charts(simulated: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = run_cli("profitability", "--source", str(simulated), "--as-of", "2025-12-31",
                     "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lose money" in result.stdout and "whale curve peaks" in result.stdout
    parquet = pd.read_parquet(out / "customers.parquet")
    csv = pd.read_csv(out / "customers.csv")
    assert len(parquet) == len(csv) > 1000
    assert np.allclose(parquet.net_margin, csv.net_margin)
    for png in ("whale_curve.png", "pyramid.png"):
        data = (out / png).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000
    segments = pd.read_csv(out / "segments.csv")
    assert set(segments.segment) == {"tier", "cell", "category"}
    again = run_cli("profitability", "--source", str(simulated), "--as-of", "2025-12-31",
                    "--out", str(out))
    assert again.returncode == 2 and "already exists" in again.stderr


def test_invalid_source_writes_nothing(tmp_path: Path) -> None:
    folder = _write(tmp_path / "bad", orders="customer_id,order_date,gross_amount\n"
                    "C1,2024-13-01,10\n")
    before = snapshot(tmp_path)
    result = run_cli("profitability", "--source", str(folder), "--as-of", "2024-12-31",
                     "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "orders.order_date" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(tmp_path) == before


def test_an_as_of_without_activity_is_a_clear_error(hand_built: Path, tmp_path: Path) -> None:
    result = run_cli("profitability", "--source", str(hand_built), "--as-of", "2010-06-30",
                     "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "No customer has any order" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
