"""``klantwaarde lists``: ranking, capping, safe file names and the formatted workbooks."""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pytest
import yaml
from typer.testing import CliRunner

from conftest import snapshot
from holder import holding
from klantwaarde import cli
from klantwaarde.config import Config, load_config
from klantwaarde.decisions import READS, decide, decide_managers
from klantwaarde.errors import ConfigError, InputError
from klantwaarde.lists import (
    SHEETS,
    build_lists,
    csv_name,
    file_stems,
    read_decisions,
    write_lists,
)
from klantwaarde.models import registry
from klantwaarde.scoring.evaluate import control_effect
from klantwaarde.scoring.store import SCHEMA, read_scores, write_scores

AS_OF = dt.date(2025, 6, 30)
LOSS = "loss account"
TOOLS = "64% of customers in wholesale buy tools; this one never has"
# customer, manager, churn probability, margin at risk, expected uplift, category, net margin
CUSTOMERS = [
    ("c01", "Anna", 0.80, 8000.0, 500.0, "key account", 30000.0),
    ("c02", "Anna", 0.50, 10000.0, 1500.0, "large account", 25000.0),
    ("c03", "Anna", 0.90, 0.0, None, LOSS, -5000.0),
    ("c04", "Anna", 0.20, 900.0, 0.0, "small account", 2000.0),
    ("c05", "../../x", 0.40, 400.0, 300.0, "small account", 1000.0),
    ("c06", "A/B: C*", 0.60, 0.0, None, LOSS, -1000.0),
    ("c07", None, 0.35, 100.0, 50.0, "small account", 500.0),
    ("c08", "", 0.10, 0.0, None, LOSS, -12000.0),
    ("c09", "Jan de Vries", 0.31, 3100.0, None, "large account", 9000.0),
    ("c10", "Jan/de/Vries", 0.70, 700.0, 900.0, "small account", 1000.0),
    ("c11", "CON", 0.10, 10.0, 20.0, "small account", 100.0),
    ("c12", "Anna", 0.30, 50.0, None, "small account", 150.0),
]
AT_RISK = ["c02", "c01", "c09", "c10", "c05", "c07"]  # c12 is Anna's third: capped at 2
# one contact per customer, retention first without a response model: only CON has room left
CROSS_SELL = ["c11"]
LOSS_ACCOUNTS = ["c08", "c03", "c06"]
MANAGERS = {"Anna", "../../x", "A/B: C*", "unassigned", "Jan de Vries", "Jan/de/Vries", "CON"}


def _row(customer: str, manager: str | None, churn: float, at_risk: float,
         uplift: float | None, category: str, net_margin: float) -> dict:
    loss = category == LOSS
    return {
        "as_of": AS_OF, "customer_id": customer, "account_manager": manager,
        "churn_version": 1, "margin_version": 1, "upgrade_version": 1,
        "churn_probability": churn, "future_net_margin": at_risk / churn,
        "margin_at_risk": at_risk, "upgrade_probability": 0.5 if uplift else 0.05,
        "next_best_categories": ["tools", "safety"] if uplift else [],
        "expected_uplift": uplift, "adoption_margin": uplift,
        "revenue": abs(net_margin) * 4, "net_margin": net_margin,
        "tier": "A" if net_margin > 20000 else "C", "category": category,
        "cell": "no, no, no" if loss else "yes, yes, no", "policy": "let go" if loss else "keep",
        "loss_driver": "small_orders" if loss else None,
        "remedy": "set a minimum order size" if loss else None,
        "churn_reasons": ["no visit for 5 months", "3 complaints in the last 3 months"],
        "margin_reasons": None, "upgrade_reasons": [TOOLS] if uplift else None,
    }


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config folder whose scores table holds AS_OF, and lists of at most 2 rows (no control
    group, so that the rankings show whole)."""
    folder = tmp_path / "config"
    folder.mkdir()
    store, parquet = tmp_path / "scores" / "scores.duckdb", tmp_path / "scores" / "parquet"
    (folder / "scoring.yaml").write_text(yaml.safe_dump({"store": str(store),
                                                         "parquet": str(parquet)}))
    (folder / "lists.yaml").write_text("capacity: {default: 2}\ncontrol_share: 0\n"
                                       "cross_sell_attributable: 1\n")
    rows = [_row(*c) for c in CUSTOMERS]
    write_scores(store, parquet, AS_OF, pa.Table.from_pylist(rows, schema=SCHEMA))
    return folder


def _lists(config: Path, out: Path, as_of: str = "2025-06-30") -> str:
    result = CliRunner().invoke(cli.app, ["lists", "--as-of", as_of, "--out", str(out),
                                          "--config", str(config)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def _main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr("sys.argv", ["klantwaarde", *args])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    return exit_.value.code


def _sheet(book: openpyxl.Workbook, name: str) -> list[list]:
    return [list(r) for r in book[name].iter_rows(values_only=True)]


def _csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.reader(file))


def _same(sheet_value: object, csv_value: str) -> bool:
    if sheet_value is None:
        return csv_value == ""
    if isinstance(sheet_value, float | int):
        return math.isclose(float(csv_value), sheet_value)
    return csv_value == sheet_value


def test_overall_workbook_ranks_caps_and_formats(config: Path, tmp_path: Path) -> None:
    output = _lists(config, tmp_path / "out")
    assert "Jan/de/Vries" in output and "all_managers.xlsx" in output
    book = openpyxl.load_workbook(tmp_path / "out" / "all_managers.xlsx")
    assert book.sheetnames == list(SHEETS)
    at_risk = _sheet(book, "at risk")
    assert at_risk[0] == ["customer_id", "account_manager", "churn_probability",
                          "future_net_margin", "margin_at_risk", "expected_saved_margin", "tier",
                          "category", "reasons"]
    assert [r[0] for r in at_risk[1:]] == AT_RISK
    assert at_risk[1][1:5] == ["Anna", 0.5, 20000.0, 10000.0]
    assert at_risk[1][8] == "no visit for 5 months; 3 complaints in the last 3 months"
    assert [r[1] for r in at_risk[1:]][-1] == "unassigned"  # c07 has no manager
    cross = _sheet(book, "cross-sell")
    assert [r[0] for r in cross[1:]] == CROSS_SELL
    assert cross[1][cross[0].index("next_best_categories")] == "tools, safety"
    assert cross[1][cross[0].index("reasons")] == TOOLS
    losses = _sheet(book, "loss accounts")
    assert [r[0] for r in losses[1:]] == LOSS_ACCOUNTS
    assert losses[0][:4] == ["customer_id", "account_manager", "revenue", "net_margin"]
    assert losses[1][1:4] == ["unassigned", 48000.0, -12000.0]
    assert {"remedy", "loss_driver", "policy"} <= set(losses[0])

    sheet = book["at risk"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:I{len(AT_RISK) + 1}"
    assert sheet["A1"].font.b and not sheet["A2"].font.b
    assert "%" in sheet["C2"].number_format
    assert "#,##0" in sheet["D2"].number_format and "#,##0" in sheet["E2"].number_format
    assert sheet.column_dimensions["I"].width > sheet.column_dimensions["A"].width >= 10


def test_loss_accounts_are_never_at_risk(config: Path, tmp_path: Path) -> None:
    lists = build_lists(read_scores(config.parent / "scores" / "parquet", AS_OF), AS_OF,
                        load_config(config))
    at_risk = set(lists.tables["at risk"].customer_id)
    losses = set(lists.tables["loss accounts"].customer_id)
    assert losses == {"c03", "c06", "c08"}
    assert not at_risk & losses  # c03 and c06 have churn probabilities 0.9 and 0.6


def test_each_manager_gets_own_files_inside_the_folder(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    before = snapshot(tmp_path)
    _lists(config, out)
    new = set(snapshot(tmp_path)) - set(before)
    assert all(Path(p).resolve().is_relative_to(out.resolve()) for p in new)
    files = sorted(p.name for p in (out / "managers").iterdir())
    assert len(files) == 5 * len(MANAGERS)  # no two managers share a file
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*\.(xlsx|csv)", f) for f in files)
    assert sorted(p.name for p in out.iterdir()) == ["all_managers.xlsx", "control_group.csv",
                                                     "index.csv", "managers"]

    index = list(csv.DictReader((out / "index.csv").open(encoding="utf-8")))
    assert {r["manager"] for r in index} == MANAGERS
    counts = {r["manager"]: tuple(int(r[k]) for k in ("at_risk", "win_back", "cross_sell",
                                                       "loss_accounts")) for r in index}
    assert counts["Anna"] == (2, 0, 0, 1)
    assert counts["unassigned"] == (1, 0, 0, 1)
    assert counts["CON"] == (0, 0, 1, 0)
    assert {r["capacity"] for r in index} == {"2"}
    assert {(r["as_of"], r["contact"]) for r in index} == {("2025-06-30", "call")}
    assert _csv(out / "control_group.csv") == [["customer_id", "account_manager"]]  # share 0
    customers = {m or "unassigned": set() for _, m, *_ in CUSTOMERS}
    for customer, manager, *_ in CUSTOMERS:
        customers[manager or "unassigned"].add(customer)

    for row in index:
        stem = row["file_stem"]
        book = openpyxl.load_workbook(out / "managers" / f"{stem}.xlsx")
        assert book.sheetnames == list(SHEETS)
        for name, count in zip(SHEETS, counts[row["manager"]], strict=True):
            rows = _sheet(book, name)
            assert "account_manager" not in rows[0]
            assert len(rows) - 1 == count
            assert {r[0] for r in rows[1:]} <= customers[row["manager"]]
            assert book[name].freeze_panes == "A2" and book[name].auto_filter.ref
            written = _csv(out / "managers" / csv_name(stem, name))
            assert written[0] == rows[0]
            assert len(written) == len(rows)
            assert all(_same(s, c) for r, w in zip(rows[1:], written[1:], strict=True)
                       for s, c in zip(r, w, strict=True))


def test_file_stems_are_safe_readable_and_unique(tmp_path: Path) -> None:
    names = ["../../x", "A/B: C*", "CON", "nul", "", "..", "Jan de Vries", "Jan/de/Vries",
             "anna", "Anna", "José", "-rf", "a" * 300]
    stems = file_stems(names)
    assert len({s.casefold() for s in stems.values()}) == len(names)
    for stem in stems.values():
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,80}", stem)
        assert (tmp_path / f"{stem}.xlsx").resolve().parent == tmp_path.resolve()
    assert stems["José"] == "Jose" and stems["-rf"] == "rf" and stems["../../x"] == "x"
    assert stems["A/B: C*"] == "A_B_C"
    assert stems["CON"].startswith("CON__") and stems[""].startswith("manager__")
    assert stems["Jan de Vries"] != stems["Jan/de/Vries"]
    assert stems["Jan de Vries"].startswith("Jan_de_Vries__")
    assert file_stems(reversed(names)) == stems  # the same whatever the order


def test_a_failure_leaves_no_folder(config: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    lists = build_lists(read_scores(config.parent / "scores" / "parquet", AS_OF), AS_OF,
                        load_config(config))

    def broken(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("klantwaarde.lists._write_index", broken)
    with pytest.raises(OSError, match="disk full"):
        write_lists(lists, tmp_path / "out")
    assert not any(p.name.startswith((".out", "out")) for p in tmp_path.iterdir())


def test_a_month_not_scored_is_refused(config: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture) -> None:
    code = _main(monkeypatch, "lists", "--as-of", "2025-07-31", "--out", str(tmp_path / "out"),
                 "--config", str(config))
    message = capsys.readouterr().err
    assert code == 2
    assert "no scores at 2025-07-31" in message and "2025-06-30" in message
    assert "klantwaarde score --source SRC --as-of 2025-07-31" in message
    assert not (tmp_path / "out").exists()


def test_an_existing_folder_is_left_untouched(config: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    before = snapshot(out)
    code = _main(monkeypatch, "lists", "--as-of", "2025-06-30", "--out", str(out),
                 "--config", str(config))
    assert code == 2
    assert "already exists" in capsys.readouterr().err
    assert snapshot(out) == before


def test_a_blank_unassigned_name_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "lists.yaml").write_text("unassigned: ' '\n")
    with pytest.raises(ConfigError, match="key 'unassigned'"):
        load_config(tmp_path)


def test_lists_and_report_read_while_a_score_holds_the_table(config: Path,
                                                             tmp_path: Path) -> None:
    """They read the Parquet copies, so a score writing the DuckDB file never blocks them."""
    (config / "models.yaml").write_text(yaml.safe_dump({"store": str(tmp_path / "models")}))
    registry.connect(load_config(config).models, create=True)  # an empty model registry
    with holding(config.parent / "scores" / "scores.duckdb", "write"):
        output = _lists(config, tmp_path / "out")
        page = CliRunner().invoke(cli.app, ["report", "--as-of", "2025-06-30", "--out",
                                            str(tmp_path / "report.html"), "--config",
                                            str(config)])
    assert "all_managers.xlsx" in output
    assert page.exit_code == 0, page.output + repr(page.exception)
    assert "loss account" in (tmp_path / "report.html").read_text(encoding="utf-8")


def _base(n: int, managers: int = 3) -> pd.DataFrame:
    """``n`` scored customers spread over ``managers`` managers, with a response model's effect;
    every fifth customer gone for 200 days."""
    rng = np.random.default_rng(7)
    rows = pd.DataFrame([_row(f"k{i:04d}", f"M{i % managers}", float(rng.uniform(0.05, 0.9)),
                              float(rng.uniform(0, 5000)), float(rng.uniform(0, 900)),
                              "small account", float(rng.uniform(-500, 8000)))
                         for i in range(n)])
    rows["category"] = np.where(rows.net_margin < 0, LOSS, "small account")
    rows["days_since_last_order"] = np.where(np.arange(n) % 5 == 0, 200, 20)
    rows["contact_effect"] = rng.uniform(-0.01, 0.2, n)
    rows["adoption_margin"] = rng.uniform(0, 15000, n)
    return rows


def _config(tmp_path: Path, text: str) -> Config:
    folder = tmp_path / "decisions"
    folder.mkdir(exist_ok=True)
    (folder / "lists.yaml").write_text(text)
    return load_config(folder)


def test_sheets_stay_within_each_managers_capacity(tmp_path: Path) -> None:
    scores = _base(600)
    cfg = _config(tmp_path, "capacity: {default: 7, managers: {M1: 3, M2: 0}}\n")
    lists = build_lists(scores, AS_OF, cfg)
    assert lists.capacity == {"M0": 7, "M1": 3, "M2": 0}  # M0 has no override: the default
    for name, table in lists.tables.items():
        per_manager = table.account_manager.value_counts()
        for manager, rows in per_manager.items():
            assert rows <= lists.capacity[manager], (name, manager)
    # retention and cross-sell share the contacts: enough candidates to fill M0's
    contacted = pd.concat([lists.tables["at risk"], lists.tables["cross-sell"]])
    assert contacted.account_manager.value_counts().to_dict() == {"M0": 7, "M1": 3}
    assert contacted.customer_id.is_unique  # one contact per customer
    assert (lists.tables["win-back"].account_manager.value_counts()["M0"]
            == (lists.tables["loss accounts"].account_manager == "M0").sum() == 7)
    # no one both at risk and gone, held-out customers on no sheet
    at_risk, back = set(lists.tables["at risk"].customer_id), set(
        lists.tables["win-back"].customer_id)
    assert not at_risk & back
    gone = set(scores.customer_id[scores.days_since_last_order > 120])
    assert back <= gone and not at_risk & gone
    on_sheets = set().union(*(set(t.customer_id) for t in lists.tables.values()))
    assert not set(lists.held_out.customer_id) & on_sheets


def test_contacts_go_where_they_are_worth_most(tmp_path: Path) -> None:
    scores = _base(300)
    cfg = _config(tmp_path, "capacity: {default: 10}\ncontrol_share: 0\n")
    lists = build_lists(scores, AS_OF, cfg)
    costs, horizon = cfg.costs, cfg.labels.horizon_months
    effect = scores.contact_effect.clip(upper=scores.churn_probability)  # at most the risk
    saved = effect * scores.future_net_margin.clip(lower=0) * 12 / horizon - costs.per_call
    offered = cfg.lists.cross_sell_attributable * scores.adoption_margin  # the offer's doing
    cross = offered - costs.per_call
    here = scores.days_since_last_order <= 120
    keep, offer = here & (saved > 0) & (scores.category != LOSS), here & (cross > 0)
    # one contact, one cost: the saved margin and the offer's margin together
    worth = (saved.where(keep, -costs.per_call) + offered.where(offer, 0)).where(keep | offer)
    expected = scores.assign(worth=worth, saved=saved.where(keep), cross=cross.where(offer)
                             ).dropna(subset="worth")
    at_risk, offers = lists.tables["at risk"], lists.tables["cross-sell"]
    for manager, mine in expected.groupby("account_manager"):
        best = mine.nlargest(10, "worth")
        retain = best[best.saved.notna() & ~(best.cross > best.saved)]
        assert set(at_risk.customer_id[at_risk.account_manager == manager]) == set(
            retain.customer_id)
        assert set(offers.customer_id[offers.account_manager == manager]) == set(
            best.customer_id) - set(retain.customer_id)
    assert (at_risk.expected_saved_margin > 0).all() and (offers.cross_sell_margin > 0).all()
    assert len(offers) > 0 and len(at_risk) > 0  # both compete here
    mine = at_risk[at_risk.account_manager == "M0"]
    assert mine.expected_saved_margin.is_monotonic_decreasing  # ranked on each sheet
    assert np.allclose(mine.expected_saved_margin,
                       saved[scores.customer_id.isin(mine.customer_id)].sort_values(
                           ascending=False))
    # without a response model, margin at risk among the likely churners, ahead of cross-sell
    fallback = build_lists(scores.drop(columns="contact_effect"), AS_OF, cfg).tables["at risk"]
    assert fallback.expected_saved_margin.isna().all()
    assert (scores.set_index("customer_id").churn_probability[fallback.customer_id]
            >= cfg.lists.at_risk_min_probability).all()
    assert fallback.account_manager.value_counts().to_dict() == {"M0": 10, "M1": 10, "M2": 10}


def test_without_a_response_model_retention_fills_capacity_before_cross_sell(
        tmp_path: Path) -> None:
    """Without contact_effect every at-risk candidate comes before any cross-sell in its
    manager's capacity, even where a cross-sell margin is far above the margin at risk."""
    cfg = _config(tmp_path, "capacity: {default: 4, managers: {M1: 1}}\ncontrol_share: 0\n")
    # customer, manager, churn probability, margin at risk, adoption margin
    rows = [("r1", "M0", 0.9, 100.0, None), ("r2", "M0", 0.6, 50.0, None),
            ("both", "M0", 0.7, 10.0, 90000.0), ("x1", "M0", 0.05, 5.0, 50000.0),
            ("x2", "M0", 0.05, 5.0, 60000.0),
            ("m1r", "M1", 0.5, 1.0, None), ("m1x", "M1", 0.05, 1.0, 99999.0)]
    scores = pd.DataFrame([_row(c, m, churn, risk, adopt, "small account", 1000.0)
                           for c, m, churn, risk, adopt in rows]).assign(days_since_last_order=20)
    assert "contact_effect" not in scores
    decided = decide(scores, AS_OF, cfg.lists, cfg.costs, cfg.labels.horizon_months).set_index(
        scores.customer_id)
    assert set(decided.index[decided.retention == "at risk"]) == {"r1", "r2", "both", "m1r"}
    assert set(decided.index[decided.cross_sell]) == {"x2"}  # M0's one place left, M1's none
    assert decided.cross_sell_margin["both"] > scores.margin_at_risk.max()


def test_each_managers_decisions_alone_are_those_of_the_whole_month(tmp_path: Path) -> None:
    """What Spark does: decide_managers on one manager's customers at a time, reading only
    READS and told whether the month has any expected saved margin, decides as decide does on
    the whole month, also where one manager's customers have no contact effect at all."""
    scores = _base(300)
    scores["contact_effect"] = scores.contact_effect.where(scores.account_manager != "M1")
    cfg = _config(tmp_path, "capacity: {default: 7, managers: {M2: 3}}\ncontrol_share: 0.2\n")
    whole = decide(scores, AS_OF, cfg.lists, cfg.costs, cfg.labels.horizon_months)
    assert (whole.retention == "held out").any() and whole.cross_sell.any()

    def alone(group: pd.DataFrame, by_effect: bool) -> pd.DataFrame:
        return decide_managers(group[list(READS)], AS_OF, cfg.lists, cfg.costs,
                               cfg.labels.horizon_months, None, by_effect)

    parts = pd.concat(alone(g, True) for _, g in scores.groupby("account_manager"))
    pd.testing.assert_frame_equal(parts.sort_index(), whole)
    m1 = scores.account_manager == "M1"  # its own "any effect?" would rank it otherwise
    assert not alone(scores[m1], False).equals(whole[m1])


def test_a_month_keeps_the_decisions_taken_when_it_was_scored(tmp_path: Path) -> None:
    scores = _base(300)
    cfg = _config(tmp_path, "capacity: {default: 5}\n")
    stored = scores.join(decide(scores, AS_OF, cfg.lists, cfg.costs, cfg.labels.horizon_months))
    decided = build_lists(stored, AS_OF, cfg)
    later = build_lists(stored, AS_OF, _config(tmp_path, "capacity: {default: 50}\n"))
    assert later.capacity == decided.capacity == {"M0": 5, "M1": 5, "M2": 5}
    for name in ("at risk", "cross-sell"):
        assert later.tables[name].customer_id.tolist() == decided.tables[
            name].customer_id.tolist()
    assert later.held_out.customer_id.tolist() == decided.held_out.customer_id.tolist()
    assert len(later.held_out) > 0


def test_the_control_group_is_reproducible_and_about_its_share(tmp_path: Path) -> None:
    scores = _base(3000, managers=2)
    cfg = _config(tmp_path, "capacity: {default: 400}\ncontrol_share: 0.2\ncontrol_seed: 5\n")
    first = build_lists(scores, AS_OF, cfg)
    again = build_lists(scores.sample(frac=1, random_state=1), AS_OF, cfg)
    assert set(first.held_out.customer_id) == set(again.held_out.customer_id)
    held, listed = len(first.held_out), len(first.tables["at risk"])
    assert listed + len(first.tables["cross-sell"]) == 800  # still filled to capacity
    assert 0.15 < held / (held + listed) < 0.25
    assert not set(first.held_out.customer_id) & set(first.tables["cross-sell"].customer_id)
    other = build_lists(scores, AS_OF, _config(tmp_path, "capacity: {default: 400}\n"
                                                "control_share: 0.2\ncontrol_seed: 6\n"))
    assert set(other.held_out.customer_id) != set(first.held_out.customer_id)


def test_the_folder_names_its_control_group_and_reads_back(tmp_path: Path) -> None:
    scores = _base(300)
    cfg = _config(tmp_path, "capacity: {default: 400}\ncontrol_share: 0.5\ncontact: visit\n")
    lists = build_lists(scores, AS_OF, cfg)
    on_sheets = set().union(*(set(t.customer_id) for t in lists.tables.values()))
    # every candidate fits the capacity and has an uplift: still no held-out one on a sheet
    assert len(lists.held_out) > 20 and not set(lists.held_out.customer_id) & on_sheets
    out = tmp_path / "out"
    write_lists(lists, out)
    control = pd.read_csv(out / "control_group.csv")
    assert list(control.columns) == ["customer_id", "account_manager"]
    assert set(control.customer_id) == set(lists.held_out.customer_id)
    assert not list((out / "managers").glob("*control*"))  # managers never see it
    decisions = read_decisions(out)
    assert (decisions.as_of, decisions.contact) == (AS_OF, "visit")
    contacted = set().union(*(set(lists.tables[s].customer_id)
                              for s in ("at risk", "win-back", "cross-sell")))
    assert set(decisions.contacted) == contacted
    assert set(decisions.held_out) == set(control.customer_id)
    assert decisions.held_out[control.customer_id[0]] == str(out / "control_group.csv")
    assert all(Path(f).parent == out / "managers" for f in decisions.contacted.values())
    (out / "control_group.csv").unlink()
    with pytest.raises(InputError, match=r"control_group\.csv is missing.*write the lists "
                       r"again"):
        read_decisions(out)
    with pytest.raises(InputError, match=r"no index\.csv; name a folder that klantwaarde "
                       r"lists wrote"):
        read_decisions(tmp_path)


@pytest.mark.parametrize(("text", "message"), [
    ("capacity: {default: -1}\n", "capacity.default"),
    ("capacity: {default: many}\n", "capacity.default"),
    ("capacity: {default: 5, managers: {M0: -2}}\n", "capacity.managers.M0"),
    ("control_share: 0.6\n", "control_share"),
    ("control_share: -0.1\n", "control_share"),
])
def test_bad_decision_settings_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        _config(tmp_path, text)


def test_an_unknown_manager_override_is_refused(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "capacity: {default: 5, managers: {M9: 3}}\n")
    with pytest.raises(InputError, match=r"capacity\.managers\.M9.*no scored customer has "
                       r"account manager 'M9' \(managers this month: M0, M1, M2\)"):
        build_lists(_base(30), AS_OF, cfg)


def test_the_control_group_measures_the_churn_the_lists_prevented() -> None:
    rng = np.random.default_rng(3)
    n = 4000
    joined = pd.DataFrame({"customer_id": [f"k{i}" for i in range(n)],
                           "future_net_margin": 600.0, "label_future_net_margin": 500.0,
                           "label_churn": np.r_[rng.random(n // 2) < 0.10,  # contacted
                                                rng.random(n // 2) < 0.25]})  # held out
    listed = joined[: n // 2].assign(expected_saved_margin=100.0)
    found = control_effect(joined, listed, joined.customer_id[n // 2:], 2.0, 12.0)
    assert found["control_listed"] == found["control_held_out"] == n // 2
    prevented = found["control_churn_prevented"]
    assert prevented == pytest.approx(found["control_churn_held_out"]
                                      - found["control_churn_listed"])
    assert found["control_churn_prevented_low"] < 0.15 < found["control_churn_prevented_high"]
    assert 0 < found["control_churn_prevented_low"] < prevented
    assert found["control_saved_margin_realised"] == pytest.approx(
        prevented * 600 * (n // 2) * 2 - 12 * (n // 2))
    assert found["control_saved_margin_predicted"] == 100 * (n // 2)
    # no control group: only the counts
    assert control_effect(joined, listed, joined.customer_id[:0], 2.0, 12.0) == {
        "control_listed": n // 2, "control_held_out": 0}
