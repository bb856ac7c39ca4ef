"""Terminal output of the validation report (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from klantwaarde.validation import ValidationReport


def print_validation(report: ValidationReport, console: Console) -> None:
    """Per table: rows, customers, date range; then what is absent, notices and errors."""
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
