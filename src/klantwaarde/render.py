"""Terminal output of the validation, profitability and training reports (rich)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from klantwaarde.validation import ValidationReport

if TYPE_CHECKING:
    from klantwaarde.demo import DemoResult
    from klantwaarde.explain import Explanation
    from klantwaarde.lists import ListsResult
    from klantwaarde.pipelines import Pipeline, Record
    from klantwaarde.profitability.report import ProfitabilityReport
    from klantwaarde.profitability.segments import Concentration
    from klantwaarde.scoring.evaluate import EvaluationResult
    from klantwaarde.scoring.score import ScoringResult
    from klantwaarde.training.train import TrainingResult


def print_validation(report: ValidationReport, console: Console) -> None:
    """Per table: rows, customers, date range; then what is absent, how CSV files are read,
    notices and errors."""
    overview = Table(title=f"Source {escape(report.location)}", title_justify="left")
    for heading in ("table", "from", "rows", "customers", "first date", "last date"):
        numeric = heading in ("rows", "customers")
        overview.add_column(heading, justify="right" if numeric else "left")
    for s in report.summaries:
        overview.add_row(s.spec.name, escape(s.origin), f"{s.rows:,}",
                         "" if s.customers is None else f"{s.customers:,}",
                         str(s.first_date or ""), str(s.last_date or ""))
    console.print(overview)
    if report.horizon:
        console.print(f"Data horizon: {report.horizon[0]} to {report.horizon[1]}")

    absent = [f"table {t.name} — switches off {t.enables}" for t in report.absent_tables]
    for s in report.summaries:
        absent += [f"{s.spec.name}.{c.name} — switches off {c.enables}" for c in s.absent_columns]
    if absent:
        console.print("\n[bold]Absent optional parts[/bold] (the rest works without them):")
        for line in absent:
            console.print(f"  - {escape(line)}")

    if report.readings:
        console.print("\n[bold]Numbers and dates[/bold] (how the text of each CSV file is read):")
        for line in report.readings:
            console.print(f"  - {escape(line)}")

    notes = list(report.notices)
    for s in report.summaries:
        if s.protected_columns:
            cols = s.protected_columns
            verb = "is a protected attribute" if len(cols) == 1 else "are protected attributes"
            notes.append(f"{s.spec.name}: {', '.join(cols)} {verb}, never used as a feature.")
        if s.extra_columns:
            use = "customer attributes" if s.spec.name == "customers" else "not used; ignored"
            noun = "column" if len(s.extra_columns) == 1 else "columns"
            notes.append(f"{s.spec.name}: extra {noun} {', '.join(s.extra_columns)} ({use}).")
    if notes:
        console.print("\n[bold]Notices[/bold]:")
        for line in notes:
            console.print(f"  - {escape(line)}")

    if report.ok:
        console.print("\n[green]Valid:[/green] the source meets the data contract.")
        return
    console.print(f"\n[red]Invalid:[/red] {len(report.errors)} problem(s) found; nothing was "
                  "written.")
    for f in report.errors:
        console.print(f"\n[red]✗[/red] {escape(f.where)}: {escape(f.problem)}.")
        console.print(f"  Fix: {escape(f.fix)}.")
        if f.examples:
            console.print("  Examples:")
            for line in f.examples.splitlines():
                console.print(f"    {escape(line)}", soft_wrap=True)


def _concentration(c: Concentration) -> str:
    cost = ("" if c.tail_cost_share is None
            else f" and take {c.tail_cost_share:.0%} of all cost-to-serve")
    return (f"the top 20% of customers make {c.top20_revenue_share:.0%} of revenue; the "
            f"{c.tail_customer_share:.0%} of customers that make the last 20% earn "
            f"{c.tail_margin_pct:.1%} of their revenue{cost}")


def print_profitability(report: ProfitabilityReport, console: Console) -> None:
    """The headline figures, the pyramid and the categories of a profitability report."""
    h = report.headline
    console.print(f"[bold]Profitability[/bold] {report.start + dt.timedelta(days=1)} to "
                  f"{report.as_of}: {h['customers']:,} customers")
    console.print(f"  revenue EUR {h['revenue']:,.0f}; net margin EUR {h['net_margin']:,.0f} "
                  f"({h['net_margin_pct']:.1%}) after EUR {h['cost_to_serve']:,.0f} cost-to-serve")
    console.print(f"  {h['loss_share']:.0%} of customers lose money (EUR "
                  f"{h['loss_of_loss_accounts']:,.0f} together); {h['profit_makers_share']:.0%} "
                  f"make all the profit; the whale curve peaks at {h['whale_peak']:.0%}")
    console.print(f"  {_concentration(report.concentration)}")
    table = Table("segment", "customers", "revenue share", "net margin (EUR)")
    for row in report.segments.itertuples():
        if row.segment in ("tier", "category"):
            table.add_row(f"{row.segment}: {row.value}", f"{row.customers:,}",
                          f"{row.revenue_share:.1%}", f"{row.net_margin:,.0f}")
    console.print(table)
    for line in report.skipped:
        console.print(f"  skipped {escape(line)}")


_COLUMNS = {"churn": ["roc_auc", "pr_auc", "lift_top10", "capture_top10", "brier",
                      "emp_per_customer"],
            "margin": ["normalized_gini", "normalized_gini_revenue", "spearman", "mae", "rmse",
                       "total_ratio"],
            "upgrade": ["mean_roc_auc", "upgrade_roc_auc", "upgrade_pr_auc"],
            "response": ["qini", "uplift_top10", "no_estimate_share", "treated_share"]}


def print_training(result: TrainingResult, console: Console) -> None:
    """The candidate table per target, the challengers and where the runs are."""
    sets = result.sets
    console.print(f"Trained on {len(sets.train):,} customer snapshots "
                  f"({sets.train_dates[0]} .. {sets.train_dates[-1]}), validated on "
                  f"{len(sets.valid):,} ({', '.join(map(str, sets.valid_dates))}); "
                  f"{len(sets.features)} features.")
    for target, columns in _COLUMNS.items():
        rows = [c for c in result.candidates if c.target == target]
        if not rows:  # a target training skipped (response without interactions)
            continue
        if target == "upgrade" and rows:
            columns = columns + sorted(k for k in rows[0].metrics if k.startswith("hit_rate"))
        challenger = result.challengers.get(target)
        table = Table(title=f"{target} (validation)", title_justify="left")
        table.add_column("metric")
        for row in rows:
            best = challenger is not None and row.run_id == challenger.run_id
            table.add_column(row.candidate + (" *" if best else ""), justify="right")
        for column in columns:
            table.add_row(column, *[f"{row.metrics.get(column, float('nan')):.4f}"
                                    for row in rows])
        console.print(table)
    console.print("* the challenger: best on the selection metric (models.yaml); btyd: BG/NBD "
                  "and Gamma-Gamma, ranked by expected purchases and spend")
    for target, version in result.challengers.items():
        promoted = " and champion" if target in result.promoted else ""
        console.print(f"{version.name}: version {version.version} is challenger{promoted}")
    console.print(f"MLflow run {result.run_id} at {escape(result.tracking_uri)}")


def print_scoring(result: ScoringResult, psi_warning: float, console: Console) -> None:
    """What was scored with which versions, the score distribution and any drift."""
    versions = ", ".join(f"{t} v{v}" for t, v in result.versions.items())
    sample = " [yellow]in-sample[/yellow] (see the notice below)" if result.in_sample else ""
    console.print(f"Scored {result.customers:,} customers at {result.as_of} ({versions}){sample}; "
                  f"written to {escape(str(result.store))}.")
    s = result.summary
    table = Table(title="scores", title_justify="left")
    for column in ("score", "mean", "p10", "median", "p90"):
        table.add_column(column, justify="left" if column == "score" else "right")
    for name, fmt in (("churn_probability", "{:.1%}"), ("upgrade_probability", "{:.1%}"),
                      ("future_net_margin", "{:,.0f}"), ("margin_at_risk", "{:,.0f}"),
                      ("expected_uplift", "{:,.0f}")):
        values = [s[f"{name}_{k}"] for k in ("mean", "p10", "p50", "p90")]
        table.add_row(name, *["-" if v != v else fmt.format(v) for v in values])  # NaN: none
    console.print(table)
    if result.drifted:
        worst = sorted(result.drifted, key=lambda n: -result.drift[n])
        console.print(f"[yellow]drift[/yellow]: {len(worst)} feature(s) above PSI {psi_warning} "
                      "against the training data: " + ", ".join(
                          f"{escape(n)} {result.drift[n]:.2f}" for n in worst[:10]))
    console.print(f"MLflow run {result.run_id}")


def print_lists(result: ListsResult, as_of: dt.date, console: Console) -> None:
    """The rows of each list per account manager, and where the files are."""
    from klantwaarde.lists import OVERALL

    table = Table("account manager", "capacity", "at risk", "win-back", "cross-sell",
                  "loss accounts", title=f"Lists at {as_of}", title_justify="left")
    for m in result.managers:
        table.add_row(escape(m.manager), f"{m.capacity:,}", f"{m.at_risk:,}", f"{m.win_back:,}",
                      f"{m.cross_sell:,}", f"{m.loss_accounts:,}")
    console.print(table)
    console.print(f"Written to {escape(str(result.folder))}: {OVERALL}.xlsx (every manager), "
                  "index.csv (the counts above and each manager's file stem), "
                  "control_group.csv (the held-out customers: for no manager), and per manager "
                  "a workbook managers/<stem>.xlsx and four CSV files.")


def _shown(value: object, kind: str) -> str:
    """A score for the terminal: a share as a percentage, an amount in euros, a list joined;
    a missing value as -."""
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(value) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if kind == "share":
        return f"{value:.1%}"
    if kind == "eur":
        return f"EUR {value:,.0f}"
    return str(value)


_SCORE_KINDS = {"churn_probability": "share", "upgrade_probability": "share",
                "contact_effect": "share", "future_net_margin": "eur", "margin_at_risk": "eur",
                "expected_uplift": "eur", "expected_saved_margin": "eur", "revenue": "eur",
                "net_margin": "eur"}


def print_explanation(found: Explanation, console: Console) -> None:
    """One customer: its scores, the reasons of each model and its monthly history."""
    manager = found.account_manager or "no account manager"
    versions = ", ".join(f"{t} v{v}" for t, v in found.versions.items() if v is not None)
    console.print(f"[bold]Customer {escape(found.customer_id)}[/bold] of "
                  f"{escape(manager)}, scored at {found.as_of} ({versions})")
    scores = Table("score", "value", title="scores", title_justify="left")
    for name, value in found.scores.items():
        scores.add_row(name, escape(_shown(value, _SCORE_KINDS.get(name, ""))))
    console.print(scores)
    for target, reasons in found.reasons.items():
        origin = "" if found.reasons_from[target] == "scores table" else " (computed now)"
        console.print(f"\n[bold]Why {target}[/bold]{origin}:")
        for reason in reasons or ["no reason stands out"]:
            console.print(f"  - {escape(reason)}")
    history = Table(title=f"\nthe last {len(found.history)} months", title_justify="left")
    columns = ("month", "revenue", "gross margin", "cost to serve", "net margin", "orders",
               "lines", "visits", "calls", "contacts", "complaints")
    for column in columns:
        history.add_column(column, justify="left" if column == "month" else "right")
    for m in found.history:
        history.add_row(str(m.month_end), *[f"{v:,.0f}" for v in (
            m.revenue, m.gross_margin, m.cost_to_serve, m.net_margin)],
            *["-" if v is None else f"{v:,}" for v in (
                m.orders, m.order_lines, m.visits, m.calls, m.contacts, m.complaints)])
    console.print(history)


def print_evaluation(result: EvaluationResult, console: Console) -> None:
    """The realised quality of last horizon's scores, the lists' effect, retention and the
    pyramid migration."""
    m = result.metrics
    versions = ", ".join(f"{t} v{v}" for t, v in result.versions.items())
    kind = "in-sample" if result.in_sample else "out-of-time"
    console.print(f"Evaluated {result.customers:,} customers scored at {result.scored_at} "
                  f"({versions}) against what happened up to {result.as_of}: {kind}"
                  + (", [yellow]not an out-of-time result[/yellow] (see the notice below)."
                     if result.in_sample else "."))

    def show(value: float, fmt: str) -> str:
        return "-" if value != value else fmt.format(value)  # NaN: not measurable

    table = Table("measure", "value", "what it says", title=f"scores against outcomes ({kind})",
                  title_justify="left")
    for key, fmt, text in (
            ("churn_roc_auc", "{:.3f}", "ranking of realised churn (0.5 is random)"),
            ("churn_churn_rate", "{:.1%}", "realised churn rate"),
            ("churn_brier", "{:.3f}", "calibration error of the churn probability"),
            ("at_risk_listed", "{:,.0f}", "customers on the at-risk lists"),
            ("at_risk_hit_rate", "{:.1%}", "of them churned"),
            ("at_risk_lift", "{:.2f}x", "their churn rate against the base's"),
            ("at_risk_capture", "{:.1%}", "of all churners were on the lists"),
            ("control_held_out", "{:,.0f}", "at-risk customers held out (the control group)"),
            ("control_churn_listed", "{:.1%}", "of the listed customers churned"),
            ("control_churn_held_out", "{:.1%}", "of the held-out customers churned"),
            ("control_churn_prevented", "{:+.1%}", "churn the lists prevented (held out - listed)"),
            ("control_churn_prevented_low", "{:+.1%}", "its 95% interval, low (bootstrap)"),
            ("control_churn_prevented_high", "{:+.1%}", "its 95% interval, high"),
            ("control_saved_margin_realised", "{:,.0f}", "saved margin that implies (EUR)"),
            ("control_saved_margin_predicted", "{:,.0f}", "saved margin the lists expected (EUR)"),
            ("response_qini", "{:.3f}", "Qini of the contact effect against the contacts made"),
            ("response_uplift_top10", "{:+.1%}",
             "top 10% by contact effect: churn of the uncontacted - the contacted"),
            ("margin_mae", "{:,.0f}", "mean absolute error of the future net margin (EUR)"),
            ("margin_total_ratio", "{:.2f}", "total predicted over total realised margin"),
            ("margin_normalized_gini", "{:.3f}", "ranking of the realised margin"),
            ("upgrade_roc_auc", "{:.3f}", "ranking of realised upgrades"),
            ("cross_sell_listed", "{:,.0f}", "customers on the cross-sell lists"),
            ("cross_sell_hit_rate", "{:.1%}", "of them bought a next-best category"),
            ("cross_sell_lift", "{:.2f}x", "against all customers with a next-best category")):
        table.add_row(key, show(m.get(key, float("nan")), fmt), text)
    console.print(table)
    console.print(f"Retention: {show(m['retention_rate'], '{:.1%}')} of the customers scored at "
                  f"{result.scored_at} did not churn (goal {m['retention_goal']:.0%}).")
    migration = Table(title="pyramid migration (customers; rows: tier then, columns: tier now)",
                      title_justify="left")
    migration.add_column("then / now")
    for tier in result.migration.columns:
        migration.add_column(str(tier), justify="right")
    for tier, row in result.migration.iterrows():
        migration.add_row(str(tier), *(f"{v:,}" for v in row))
    console.print(migration)
    console.print(f"Moved up {show(m.get('pyramid_moved_up', float('nan')), '{:.1%}')}, stayed "
                  f"{show(m.get('pyramid_stayed', float('nan')), '{:.1%}')}, moved down "
                  f"{show(m.get('pyramid_moved_down', float('nan')), '{:.1%}')}.")
    console.print(f"MLflow run {result.run_id}")


def print_derived_as_of(pipeline: Pipeline, fire: dt.datetime, console: Console) -> None:
    """Which as_of ``klantwaarde run`` took from the schedule, and why."""
    from klantwaarde.pipelines import as_of_of

    schedule = pipeline.schedule()
    console.print(f"No --as-of: {as_of_of(fire)}, the day before the latest fire of "
                  f"{escape(pipeline.name)}'s schedule ('{escape(schedule.cron)}', "
                  f"{escape(schedule.timezone)}) at {fire:%Y-%m-%d %H:%M %Z}.")


def print_run(pipeline: Pipeline, record: Record, console: Console) -> None:
    """The steps of one run of a pipeline: status, seconds and what each did."""
    from klantwaarde.pipelines import record_path

    table = Table("step", "status", "seconds", "summary",
                  title=f"{escape(record.pipeline)} at {record.as_of}", title_justify="left")
    for s in record.steps:
        status = "[green]ok[/green]" if s.status == "ok" else "[yellow]skipped[/yellow]"
        table.add_row(s.name, status, f"{s.seconds:,.1f}", escape(s.summary))
    console.print(table)
    console.print(f"Recorded in {escape(str(record_path(pipeline, record.as_of)))}")


def print_month(pipeline: Pipeline, record: Record, console: Console) -> None:
    """One line per month that a catch-up ran."""
    from klantwaarde.pipelines import record_path

    steps = ", ".join(f"{s.name} {s.status}" + (f" ({s.summary})" if s.status == "skipped"
                                                 else "") for s in record.steps)
    seconds = (record.finished - record.started).total_seconds()
    console.print(f"{escape(record.pipeline)} {record.as_of}: {steps} in {seconds:,.0f} s; "
                  f"recorded in {escape(str(record_path(pipeline, record.as_of)))}")


def print_waiting(pipeline: Pipeline, fire: dt.datetime | None, console: Console) -> None:
    """When a pipeline fires next, and for which as_of."""
    from klantwaarde.pipelines import as_of_of

    if fire is None:
        console.print(f"{escape(pipeline.name)}: its schedule does not fire again")
        return
    console.print(f"{escape(pipeline.name)}: next fire at {fire:%Y-%m-%d %H:%M %Z}, for "
                  f"{as_of_of(fire)}")


def print_demo(result: DemoResult, seconds: float, console: Console) -> None:
    """What the demo made, where each output is, and the commands that go on from there."""
    sim, h = result.simulation, result.profitability.headline
    console.print(f"Demo done in {seconds:.0f} s: {sim.rows['customers']:,} simulated customers "
                  f"from {sim.first_month} to {result.as_of}, in {escape(str(result.folder))}.")
    console.print(f"Profitability at {result.as_of}: net margin EUR {h['net_margin']:,.0f} on "
                  f"revenue EUR {h['revenue']:,.0f}; {h['loss_accounts']:,} loss accounts; the "
                  f"whale curve peaks at {h['whale_peak']:.0%} of total profit; "
                  f"{_concentration(result.profitability.concentration)}.")
    champions = ", ".join(f"{t} v{v.version} ({_candidate(result.training, t)})"
                          for t, v in result.training.promoted.items())
    console.print(f"Champions: {champions or 'none promoted'}. Scored "
                  f"{result.scoring.customers:,} customers; lists for "
                  f"{len(result.lists.managers)} account managers.")
    table = Table("output", "where", title="Outputs", title_justify="left")
    for name, path in (("source (CSV/Parquet tables, truth/ holds the simulator's truth)",
                        sim.source),
                       ("configuration (pass as --config)", result.config),
                       ("profitability tables and charts", result.profitability_folder),
                       ("MLflow store (runs, registered models)", result.store),
                       ("scores table", result.scoring.store),
                       ("lists per account manager", result.lists.folder),
                       ("management report", result.report)):
        table.add_row(name, escape(str(path)))
    console.print(table)
    config = escape(str(result.config))
    console.print("Open the MLflow UI on the demo store:\n"
                  f"  .venv/bin/mlflow ui --backend-store-uri "
                  f"sqlite:///{escape(str(result.store / 'mlflow.db'))}\n"
                  "Go on with the demo's data and configuration, for example:\n"
                  f"  .venv/bin/klantwaarde score --source {escape(str(sim.source))} --as-of "
                  f"{result.as_of} --config {config}\n"
                  f"  .venv/bin/klantwaarde lists --as-of {result.as_of} --out lists-demo "
                  f"--config {config}")


def _candidate(training: TrainingResult, target: str) -> str:
    run_id = training.challengers[target].run_id
    return next(c.candidate for c in training.candidates if c.run_id == run_id)
