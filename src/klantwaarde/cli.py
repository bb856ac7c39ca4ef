"""The ``klantwaarde`` command line.

Exit codes: 0 success, 2 invalid input or configuration (a message, no traceback), 1 any other
failure. Set ``KLANTWAARDE_DEBUG=1`` to see the traceback of an unexpected failure.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from klantwaarde import __version__
from klantwaarde.config import Config, load_config
from klantwaarde.errors import InputError
from klantwaarde.outputs import Kind, Place, mlflow_store, scores_store
from klantwaarde.staging import staged_file, staged_folder

if TYPE_CHECKING:
    from klantwaarde.features import FeatureSet
    from klantwaarde.pipelines import Pipeline
    from klantwaarde.simulation import SimulationResult
    from klantwaarde.sources import Source


class _FlagsTakeNoValue:
    """Help that shows no value after a flag such as --help (typer shows ``<bool>``)."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:
            if isinstance(param, TyperOption) and param.is_flag:
                param.metavar = ""
        return params


class _Group(_FlagsTakeNoValue, TyperGroup):
    pass


class _Command(_FlagsTakeNoValue, TyperCommand):
    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """The usage line with arguments named plainly (typer writes a required one as
        ``{name}``)."""
        pieces = [self.options_metavar or ""]
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar or param.name
                pieces.append(name if param.required else f"[{name}]")
        return pieces


class _App(typer.Typer):
    """A typer app whose commands are :class:`_Command`."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        return super().command(*args, cls=_Command, **kwargs)


# Markdown: typer re-flows every paragraph of a help text to the terminal's width and keeps a
# fenced block (the examples) as written.
app = _App(
    name="klantwaarde",
    help="Customer-value management: profitability, churn risk, future margin and cross-sell "
    "potential per customer, and monthly lists for account managers.\n\n"
    "Every command takes --config PATH, before or after its name. Dates are YYYY-MM-DD.\n\n"
    "Example: the whole product on a simulated base, then two of its commands again\n\n"
    "```sh\n"
    "klantwaarde demo --out demo\n"
    "klantwaarde validate --source demo/source\n"
    "klantwaarde --config demo/config score --source demo/source \\\n"
    "    --as-of 2025-12-31\n"
    "```",
    cls=_Group,
    rich_markup_mode="markdown",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# soft_wrap: long messages stay on one line in logs and pipes instead of breaking at 80 columns.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _day(value: str) -> dt.datetime:
    """A date option's value (YYYY-MM-DD) as midnight of that day; a usage error (exit 2) that
    shows the format otherwise."""
    reason = ""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError as exc:
            reason = f" ({exc})"
    raise typer.BadParameter(f"{value} is not a date{reason}; use YYYY-MM-DD, e.g. 2025-12-31.")


def _date_option(name: str, help: str) -> Any:
    return typer.Option(name, metavar="DATE", parser=_day, help=help)


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", metavar="PATH", help="Folder of YAML configuration files (or one "
                 "such file); keys it leaves out keep the shipped defaults."),
]
SourceOption = Annotated[
    str,
    typer.Option("--source", metavar="SRC", help="Folder of CSV/Parquet files, a .duckdb file or "
                 "an Ibis URL."),
]
AsOfOption = Annotated[dt.datetime, _date_option("--as-of", "Snapshot date, YYYY-MM-DD.")]


class Target(StrEnum):
    churn = "churn"
    margin = "margin"
    upgrade = "upgrade"
    response = "response"


def _choices(enum: type[StrEnum]) -> str:
    """``a, b or c``: the values of ``enum`` for a help text."""
    *most, last = [e.value for e in enum]
    return f"{', '.join(most)} or {last}"


def _version(value: bool) -> None:
    if value:
        out.print(f"klantwaarde {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    config: ConfigOption = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    ctx.obj = config


def _config(ctx: typer.Context, path: Path | None) -> Config:
    """The command's --config, else the global one, over the shipped defaults."""
    return load_config(path or ctx.obj)


@contextmanager
def progress() -> Iterator[Callable[[str], None]]:
    """A spinner with the current step on stderr, where that is a terminal; yields the function
    that names the step."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("starting")
        yield lambda text: bar.update(task, description=text)


@app.command()
def validate(ctx: typer.Context, source: SourceOption, config: ConfigOption = None) -> None:
    """Check a source against the data contract; print per-table figures or the errors.

    Exit code 2 when the data is invalid. Nothing is written anywhere.

    Example:

    ```sh
    klantwaarde validate --source data/export/
    klantwaarde validate --source data/export.duckdb
    ```
    """
    from klantwaarde.render import print_validation
    from klantwaarde.sources import open_source
    from klantwaarde.validation import validate_source

    cfg = _config(ctx, config)
    with progress() as step:
        step("opening the source")
        report = validate_source(open_source(source, cfg.source), cfg, step)
    print_validation(report, out)
    if not report.ok:
        raise typer.Exit(2)


class OutputFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"
    duckdb = "duckdb"


@app.command()
def simulate(
    ctx: typer.Context,
    out_dir: Annotated[Path, typer.Option("--out", metavar="DIR",
                                          help="New folder to write the tables to.")],
    customers: Annotated[int | None, typer.Option(min=1, metavar="N",
                                                  help="Number of customers.")] = None,
    months: Annotated[int | None, typer.Option(min=1, max=600, metavar="N",
                                               help="Number of months of history.")] = None,
    seed: Annotated[int | None, typer.Option(min=0, metavar="N", help="Random seed: the same "
                                             "arguments and seed give the same data.")] = None,
    fmt: Annotated[OutputFormat | None, typer.Option(
        "--format", metavar="FORMAT", help=f"File format of the tables: {_choices(OutputFormat)} "
        "(default parquet; truth/ is always Parquet).")
    ] = None,
    start: Annotated[dt.datetime | None, _date_option(
        "--start", "First simulated month, YYYY-MM-DD (default from simulate.yaml).")] = None,
    base: Annotated[Path | None, typer.Option(
        "--from", metavar="DIR", help="A base klantwaarde simulate wrote: simulate it again, "
        "with its own arguments, seed and settings (truth/simulation.yaml), following the "
        "lists of --follow.")] = None,
    follow: Annotated[Path | None, typer.Option(
        "--follow", metavar="DIR", help="A folder klantwaarde lists wrote for the base of "
        "--from: in the month after its as_of, the account managers contact every customer on "
        "an at-risk, win-back or cross-sell sheet and give the control group no visit or "
        "call.")] = None,
    config: ConfigOption = None,
) -> None:
    """Write a simulated B2B customer base with known ground truth (truth/ holds the truth).

    With --from and --follow, the base of --from again, up to the lists' as_of the same rows,
    and after it what following the lists did: the outcome that klantwaarde evaluate measures.

    Example:

    ```sh
    klantwaarde simulate --customers 5000 --months 36 --seed 1 --out data/sim
    klantwaarde simulate --from data/sim --follow lists/2025-06-30 \\
        --out data/followed
    ```
    """
    from klantwaarde.simulation import simulate as run_simulation

    given = {"--customers": customers, "--months": months, "--seed": seed, "--format": fmt,
             "--start": start}
    if (base is None) != (follow is None):
        raise InputError("--from and --follow go together: --from names the simulated base, "
                         "--follow the lists its account managers follow.")
    if base is not None:
        extra = [name for name, value in given.items() if value is not None]
        if extra:
            raise InputError("--from simulates its base with the base's own arguments; "
                             f"leave out {', '.join(extra)}.")
    else:
        missing = [name for name in ("--customers", "--months", "--seed")
                   if given[name] is None]
        if missing:
            raise InputError(f"Missing option {', '.join(missing)} (or --from and --follow).")
    cfg = _config(ctx, config)
    _check_places("simulate", [Place(out_dir, "--out", Kind.NEW_FOLDER)],
                  None if base is None else str(base))
    if base is not None and follow is not None:
        _simulate_following(base, follow, out_dir)
        return
    assert customers is not None and months is not None and seed is not None
    with progress() as step:
        result = run_simulation(customers, months, seed, out_dir, cfg,
                                (fmt or OutputFormat.parquet).value,
                                start.date() if start else None, step)
    _print_simulation(result)


def _simulate_following(base: Path, lists: Path, out_dir: Path) -> None:
    """The base of ``base`` again, its account managers following the lists in ``lists``."""
    from klantwaarde.lists import read_decisions
    from klantwaarde.simulation import follow_lists, recorded
    from klantwaarde.simulation import simulate as run_simulation

    record = recorded(base)
    decisions = read_decisions(lists)
    follow = follow_lists(record, decisions.as_of, decisions.contact, decisions.contacted,
                          decisions.held_out)
    month = record.calendar.starts[follow.month].item()
    followed = {"from": str(base), "lists": str(lists), "as_of": decisions.as_of.isoformat(),
                "month": month.isoformat(), "contact": decisions.contact,
                "contacted": len(follow.contacted), "held_out": len(follow.held_out)}
    with progress() as step:
        result = run_simulation(record.customers, record.months, record.seed, out_dir,
                                record.config, record.fmt, record.start, step, follow, followed)
    _print_simulation(result)
    out.print(f"In {month:%B %Y} the account managers followed the lists of "
              f"{decisions.as_of}: a {decisions.contact} to {len(follow.contacted):,} customers, "
              f"no visit or call to the {len(follow.held_out):,} held out; up to "
              f"{decisions.as_of} every row is that of {base}.")


def _print_simulation(result: SimulationResult) -> None:
    out.print(f"Simulated {result.first_month} to {result.end - dt.timedelta(days=1)} "
              f"into {result.folder}:")
    for name, rows in result.rows.items():
        out.print(f"  {name:<18} {rows:>12,} rows")
    out.print(f"Check it with: klantwaarde validate --source {result.source}")


@app.command()
def profitability(ctx: typer.Context, source: SourceOption, as_of: AsOfOption,
                  out_dir: Annotated[Path, typer.Option("--out", metavar="DIR", help="New folder "
                                                        "for the tables and charts.")],
                  config: ConfigOption = None) -> None:
    """Net margin per customer after cost-to-serve, the pyramid and the whale curve.

    Example:

    ```sh
    klantwaarde profitability --source data/sim --as-of 2025-12-31 \\
        --out reports/2025-12
    ```
    """
    from klantwaarde.profitability.report import build_report, write_report
    from klantwaarde.render import print_profitability

    cfg = _config(ctx, config)
    _check_places("profitability", [Place(out_dir, "--out", Kind.NEW_FOLDER)], source)
    with progress() as step:
        src = _valid_source(source, cfg, step, "profitability", as_of)
        step("computing margins per customer")
        report = build_report(src, as_of.date(), cfg)
        step("writing tables and charts")
        with staged_folder(out_dir, "profitability") as folder:
            files = write_report(report, folder)
    print_profitability(report, out)
    out.print("Written: " + ", ".join(str(out_dir / f.name) for f in files))


def _valid_source(source: str, cfg: Config, step: Callable[[str], None], command: str,
                  as_of: dt.datetime) -> Source:
    """The opened source, after the data contract passed and its orders were found to reach
    ``as_of`` (the one coverage check of every command that reads a source at an --as-of);
    exit 2 with the findings otherwise."""
    from klantwaarde.features import check_covers
    from klantwaarde.validation import open_valid_source

    with _contract_report():
        src = open_valid_source(source, cfg, step)
    check_covers(src, as_of.date(), command)
    return src


def _check_places(command: str, places: list[Place], source: str | None = None) -> None:
    """Every place the command will write is writable, outside the source and free; checked
    before any work, so that a refused command changes nothing on disk."""
    from klantwaarde.outputs import check_places

    check_places(places, command, source)


@contextmanager
def _contract_report() -> Iterator[None]:
    """A source that breaks the data contract: print every finding and exit 2."""
    from klantwaarde.validation import InvalidSourceError

    try:
        yield
    except InvalidSourceError as exc:
        from klantwaarde.render import print_validation

        print_validation(exc.report, err)
        raise typer.Exit(2) from None


@app.command()
def features(ctx: typer.Context, source: SourceOption, as_of: AsOfOption,
             out_file: Annotated[Path, typer.Option("--out", metavar="FILE",
                                                    help="New Parquet file to write.")],
             snapshots: Annotated[int, typer.Option(
                 min=1, max=120, metavar="N", help="Also the monthly snapshots before --as-of: "
                 "this many in all.")] = 1,
             config: ConfigOption = None) -> None:
    """Point-in-time features of every active customer at --as-of: one row per customer.

    Example:

    ```sh
    klantwaarde features --source data/sim --as-of 2025-12-31 \\
        --out features/2025-12.parquet
    klantwaarde features --source data/sim --as-of 2025-12-31 --snapshots 12 \\
        --out features/2025.parquet
    ```
    """
    from klantwaarde.features import snapshot_sets
    from klantwaarde.features.output import write_features

    cfg = _config(ctx, config)
    if out_file.suffix != ".parquet":
        raise InputError(f"--out {out_file}: features are written as Parquet; name the file "
                         "*.parquet.")
    _check_places("features", [Place(out_file, "--out", Kind.NEW_FILE)], source)
    dates: list[dt.date] = []
    with staged_file(out_file, "features") as staging, progress() as step:
        src = _valid_source(source, cfg, step, "features", as_of)
        step("aggregating the history")

        def announced(sets: Iterator[FeatureSet]) -> Iterator[FeatureSet]:
            for fs in sets:
                dates.extend(fs.as_of)
                step(f"snapshot {len(dates)} of {snapshots}: writing the features at "
                     f"{fs.as_of[0]}")
                yield fs

        first, rows = write_features(
            announced(snapshot_sets(src, as_of.date(), cfg, snapshots)), staging)
        if first is None or rows == 0:  # the staged file is removed: nothing is written
            months = cfg.labels.active_months
            raise InputError(
                f"orders: no customer has an order line in the {months} months up to --as-of "
                f"{as_of.date()}, so no customer is active and there is nothing to compute. "
                f"Fix: choose an --as-of within the data (see klantwaarde validate for its "
                f"dates), or raise active_months in labels.yaml.")
    for notice in first.skipped:
        err.print(f"[yellow]skipped[/yellow] {escape(notice)}")
    out.print(f"{rows:,} customer snapshots with {len(first.features)} features at "
              f"{', '.join(str(d) for d in dates)} written to {out_file}")


@app.command()
def train(ctx: typer.Context, source: SourceOption, as_of: AsOfOption,
          config: ConfigOption = None) -> None:
    """Train and compare the churn, margin and upgrade models; register the best in MLflow.

    The data are the monthly snapshots whose labels are complete by --as-of: the newest of them
    validate the candidates, the ones before them train. Runs and models go to the MLflow server
    that MLFLOW_TRACKING_URI names, or else to models/ (see models.yaml).

    Example:

    ```sh
    klantwaarde train --source data/sim --as-of 2025-12-31
    ```
    """
    from klantwaarde.render import print_training
    from klantwaarde.training.train import train as run_training

    cfg = _config(ctx, config)
    _check_places("train", mlflow_store(cfg.models.store), source)
    with progress() as step:
        src = _valid_source(source, cfg, step, "train", as_of)
        result = run_training(src, as_of.date(), cfg, step)
    print_training(result, out)
    for notice in result.notices:
        err.print(escape(notice))


@app.command()
def promote(ctx: typer.Context,
            target: Annotated[Target, typer.Option(
                metavar="TARGET", help=f"Which model: {_choices(Target)}.")],
            version: Annotated[int | None, typer.Option(
                metavar="N", help="Model version (default: the challenger).")] = None,
            config: ConfigOption = None) -> None:
    """Move the champion alias of a registered model to a version (default: the challenger).

    Example:

    ```sh
    klantwaarde promote --target churn
    klantwaarde promote --target margin --version 3
    ```
    """
    from klantwaarde.models import registry

    cfg = _config(ctx, config)
    _check_places("promote", mlflow_store(cfg.models.store))
    registry.connect(cfg.models)
    found = registry.promote(target.value, version)
    out.print(f"{found.name}: champion is now version {found.version} (run {found.run_id})")


@app.command()
def score(ctx: typer.Context, source: SourceOption, as_of: AsOfOption,
          config: ConfigOption = None) -> None:
    """Score every active customer at --as-of with the champion models.

    Writes the month to the scores table (scoring.yaml; re-running a month replaces it) and
    logs the run, with drift against the training data, to MLflow.

    Example:

    ```sh
    klantwaarde score --source data/sim --as-of 2025-12-31
    ```
    """
    from klantwaarde.render import print_scoring
    from klantwaarde.scoring.score import score as run_scoring
    from klantwaarde.scoring.store import check_unlocked
    from klantwaarde.sources import is_spark

    cfg = _config(ctx, config)
    _check_places("score", mlflow_store(cfg.models.store)
                  + scores_store(cfg.scoring.store, cfg.scoring.parquet), source)
    if not is_spark(source):  # another process has the DuckDB file open (Spark does not write it)
        check_unlocked(cfg.scoring.store, cfg.scoring.parquet)
    with progress() as step:
        src = _valid_source(source, cfg, step, "score", as_of)
        result = run_scoring(src, as_of.date(), cfg, step)
    print_scoring(result, cfg.scoring.psi_warning, out)
    for notice in result.notices:
        err.print(escape(notice))


@app.command()
def lists(ctx: typer.Context, as_of: AsOfOption,
          out_dir: Annotated[Path, typer.Option("--out", metavar="DIR",
                                                help="New or empty folder for the lists.")],
          config: ConfigOption = None) -> None:
    """At-risk, cross-sell and loss-account lists per account manager (XLSX and CSV).

    Reads the month --as-of from the scores table (klantwaarde score writes it); --out must be
    a new or empty folder.

    Example:

    ```sh
    klantwaarde lists --as-of 2025-12-31 --out lists/2025-12
    ```
    """
    from klantwaarde.lists import build_lists, write_lists
    from klantwaarde.render import print_lists
    from klantwaarde.scoring.store import read_scores

    cfg = _config(ctx, config)
    _check_places("lists", [Place(out_dir, "--out", Kind.NEW_FOLDER)])
    scores = read_scores(cfg.scoring.parquet, as_of.date())
    print_lists(write_lists(build_lists(scores, as_of.date(), cfg), out_dir), as_of.date(), out)


class ExplainFormat(StrEnum):
    text = "text"
    json = "json"


@app.command()
def explain(ctx: typer.Context, source: SourceOption, as_of: AsOfOption,
            customer: Annotated[str, typer.Option(
                metavar="ID", help="The customer's id, as in the source's customer_id.")],
            fmt: Annotated[ExplainFormat, typer.Option(
                "--format", metavar="FORMAT", help=f"Output: {_choices(ExplainFormat)} (one "
                "JSON object).")] = ExplainFormat.text,
            config: ConfigOption = None) -> None:
    """One scored customer: its scores, the top reasons of each model, its expected saved
    margin and its monthly history over the last 12 months.

    Reads the month --as-of from the scores table (klantwaarde score writes it). Reasons that
    the table does not hold for the customer are computed from the model versions that scored
    it and its features at --as-of from --source. Nothing is written.

    Example:

    ```sh
    klantwaarde explain --source data/sim --as-of 2025-12-31 --customer C0000042
    klantwaarde explain --source data/sim --as-of 2025-12-31 \\
        --customer C0000042 --format json
    ```
    """
    import json

    from klantwaarde.explain import explain as run_explain
    from klantwaarde.explain import scored_row
    from klantwaarde.render import print_explanation

    cfg = _config(ctx, config)
    row = scored_row(cfg, as_of.date(), customer)  # before the source is read
    with progress() as step:
        src = _valid_source(source, cfg, step, "explain", as_of)
        found = run_explain(row, src, cfg, step)
    if fmt is ExplainFormat.json:
        typer.echo(json.dumps(found.as_json(), indent=2, ensure_ascii=False))
    else:
        print_explanation(found, out)
    for notice in found.notices:
        err.print(escape(notice))


@app.command()
def evaluate(ctx: typer.Context, source: SourceOption, as_of: AsOfOption,
             config: ConfigOption = None) -> None:
    """Check the scores made one label horizon before --as-of against what happened since.

    Realised churn ROC-AUC, lift and capture of the at-risk list, margin error, calibration,
    cross-sell conversions, retention and the pyramid migration; logged to MLflow.

    Example:

    ```sh
    klantwaarde evaluate --source data/sim --as-of 2026-06-30
    ```
    """
    from klantwaarde.render import print_evaluation
    from klantwaarde.scoring.evaluate import evaluate as run_evaluation

    cfg = _config(ctx, config)
    _check_places("evaluate", mlflow_store(cfg.models.store), source)
    with progress() as step:
        src = _valid_source(source, cfg, step, "evaluate", as_of)
        result = run_evaluation(src, as_of.date(), cfg, step)
    print_evaluation(result, out)
    for notice in result.notices:
        err.print(escape(notice))


@app.command()
def report(ctx: typer.Context, as_of: AsOfOption,
           out_file: Annotated[Path, typer.Option("--out", metavar="FILE",
                                                  help="HTML file to write.")],
           config: ConfigOption = None) -> None:
    """One-page management report (self-contained HTML) of the scored month --as-of.

    Profitability, whale curve, pyramid, qualification, loss drivers, the champions'
    performance, last period's evaluation and the list sizes per account manager.

    Example:

    ```sh
    klantwaarde report --as-of 2025-12-31 --out report-2025-12.html
    ```
    """
    from klantwaarde.report import build_page

    cfg = _config(ctx, config)
    if out_file.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"--out {out_file}: the report is one HTML page; name the file *.html.")
    with staged_file(out_file, "report") as staging, progress() as step:
        step(f"building the report of {as_of.date()}")
        page = build_page(as_of.date(), cfg)
        staging.write_text(page.html, encoding="utf-8")
    out.print(f"Report of {page.as_of} written to {escape(str(out_file))} "
              f"({len(page.sections)} sections).")


PipelineSourceOption = Annotated[
    str | None,
    typer.Option("--source", metavar="SRC", help="Source for the steps instead of the "
                 "pipeline's own: a folder of CSV/Parquet files, a .duckdb file or an Ibis URL."),
]


@app.command()
def run(ctx: typer.Context,
        pipeline: Annotated[Path, typer.Argument(metavar="PIPELINE",
                                                 help="Pipeline YAML file.")],
        as_of: Annotated[dt.datetime | None, _date_option(
            "--as-of", "Snapshot date, YYYY-MM-DD (default: the day before the latest fire of "
            "the pipeline's schedule).")] = None,
        source: PipelineSourceOption = None,
        config: ConfigOption = None) -> None:
    """Run a declared pipeline for one month.

    Runs its steps in order and records the month in the pipeline's runs folder; running a
    month again replaces its outputs. Exit code 2 while another run or scheduler of the same
    pipeline is busy.

    Example:

    ```sh
    klantwaarde run pipelines/monthly_scoring.yaml --as-of 2025-12-31
    klantwaarde run pipelines/training.yaml
    ```
    """
    from klantwaarde.pipelines import as_of_of, latest_fire, load_pipeline, run_pipeline
    from klantwaarde.render import print_derived_as_of, print_run

    loaded = load_pipeline(pipeline, source, config or ctx.obj)
    if as_of is not None:
        day = as_of.date()
    else:
        now = dt.datetime.now(dt.UTC)  # wall-clock-ok: no --as-of: the schedule's latest fire
        fire = latest_fire(loaded.schedule(), now)
        if fire is None:
            raise InputError(f"{pipeline}: its schedule has not fired in eight years; pass "
                             "--as-of YYYY-MM-DD.")
        print_derived_as_of(loaded, fire, out)
        day = as_of_of(fire)
    with _contract_report(), progress() as step:
        record = run_pipeline(loaded, day, step)
    print_run(loaded, record, out)
    for s in record.steps:
        for notice in s.notices:
            err.print(f"{s.name}: {escape(notice)}")


@app.command()
def schedule(
    ctx: typer.Context,
    pipelines: Annotated[list[Path] | None, typer.Option(
        "--pipeline", metavar="FILE", help="Pipeline file with a schedule; repeat for more "
        "(default: pipelines/monthly_scoring.yaml).")] = None,
    once: Annotated[bool, typer.Option(
        "--once", help="Catch up the months due and exit (for cron or a Kubernetes "
        "CronJob).")] = False,
    source: PipelineSourceOption = None,
    config: ConfigOption = None,
) -> None:
    """Run pipelines on their schedules: catch up the months due, then wait for the next fires.

    Each fire stands for the day before its date. On start every month due since the newest
    recorded one (or the schedule's start) runs, oldest first; a failing month stays due and
    is tried again at the next fire. Ctrl-C stops.

    Example:

    ```sh
    klantwaarde schedule --once
    klantwaarde schedule --pipeline pipelines/monthly_scoring.yaml \\
        --pipeline pipelines/training.yaml
    ```
    """
    from klantwaarde.pipelines import load_pipeline
    from klantwaarde.pipelines.scheduler import serve

    files = pipelines or [Path("pipelines/monthly_scoring.yaml")]
    loaded = [load_pipeline(file, source, config or ctx.obj) for file in files]
    for pipeline in loaded:
        pipeline.schedule()  # every one has a schedule, before anything runs
    runs = [str(p.spec.runs) for p in loaded]
    shared = sorted({r for r in runs if runs.count(r) > 1})
    if shared:
        raise InputError(f"runs: {', '.join(shared)} is the runs folder of more than one "
                         "pipeline; give each pipeline its own.")
    try:
        if once:
            for pipeline in loaded:
                _catch_up(pipeline)
            return
        for pipeline in loaded:
            _fired(pipeline)
        out.print("Waiting; Ctrl-C stops.")
        serve(loaded, _fired)
    except KeyboardInterrupt:
        pass
    out.print("Stopped. A month cut short has no record; it runs at the next start.")


def _fired(pipeline: Pipeline) -> None:
    """Catch up for the scheduler: a failure is printed and tried again at the next fire."""
    from klantwaarde.pipelines import next_fire
    from klantwaarde.render import print_waiting

    try:
        _catch_up(pipeline)
    except typer.Exit:  # the source's findings are printed
        err.print(f"{pipeline.name}: the months due are tried again at the next fire")
    except Exception as exc:
        kind = "Error" if isinstance(exc, InputError) else "Failed"
        err.print(f"[red]{kind}:[/red] {escape(str(exc))}\n{pipeline.name}: the months due are "
                  "tried again at the next fire")
    now = dt.datetime.now(dt.UTC)  # wall-clock-ok: when the scheduler fires next
    print_waiting(pipeline, next_fire(pipeline.schedule(), now), out)


def _catch_up(pipeline: Pipeline) -> None:
    """Run the months due now and print a line per month; a busy pipeline is skipped."""
    from klantwaarde.pipelines import PipelineBusy, catch_up
    from klantwaarde.render import print_month

    try:
        with _contract_report(), progress() as step:
            now = dt.datetime.now(dt.UTC)  # wall-clock-ok: which fires are due; as_of per fire
            records = catch_up(pipeline, now, step,
                               lambda record: print_month(pipeline, record, out))
    except PipelineBusy as exc:
        err.print(f"[yellow]skipped[/yellow] {escape(str(exc))}")
        return
    if not records:
        out.print(f"{escape(pipeline.name)}: no month due")
    for record in records:
        for s in record.steps:
            for notice in s.notices:
                err.print(f"{record.as_of} {s.name}: {escape(notice)}")


@app.command()
def serve(ctx: typer.Context,
          host: Annotated[str, typer.Option(metavar="HOST", help="Address to listen on.")
                          ] = "127.0.0.1",
          port: Annotated[int, typer.Option(min=1, max=65535, metavar="PORT",
                                            help="Port to listen on.")] = 8000,
          config: ConfigOption = None) -> None:
    """The account managers' page: each manager's sheets of the newest scored month, their
    customers, and the outcomes they record.

    Reads the scores table's Parquet copies (reloaded when a newer month is scored) and the
    application database of web.yaml (SQLite beside the scores by default, made if missing).
    Add users with klantwaarde users add. Serve it over HTTPS behind a proxy (uvicorn's
    proxy headers are trusted from 127.0.0.1).

    Example:

    ```sh
    klantwaarde serve --port 8000
    klantwaarde serve --host 0.0.0.0 --config demo/config
    ```
    """
    import uvicorn

    from klantwaarde.web.app import create_app

    cfg = _config(ctx, config)
    application = create_app(cfg)
    out.print(f"Serving the account managers' page on http://{host}:{port} (Ctrl-C stops).")
    uvicorn.run(application, host=host, port=port, log_level="warning", proxy_headers=True)


users_app = _App(name="users", help="Users of the account managers' page (klantwaarde serve).",
                 cls=_Group, no_args_is_help=True, rich_markup_mode="markdown")
app.add_typer(users_app)


class Role(StrEnum):
    manager = "manager"
    lead = "lead"
    admin = "admin"


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The user's login name.")],
    role: Annotated[Role, typer.Option(metavar="ROLE", help=f"{_choices(Role)}: a manager "
                                       "sees the customers of their own codes, a lead those "
                                       "of a team, an admin all.")],
    managers: Annotated[list[str] | None, typer.Option(
        "--manager", metavar="CODE", help="An account-manager code as in "
        "customers.account_manager (repeat for more): a manager's own, a lead's team.")] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from standard input (its first "
        "line).")] = False,
    config: ConfigOption = None,
) -> None:
    """Add a user; the password is read from standard input, never from the command line.

    Example:

    ```sh
    printf '%s' "$PASSWORD" | klantwaarde users add anna --role manager \
        --manager AM001 --password-stdin
    ```
    """
    from klantwaarde import appdb
    from klantwaarde.web.users import add_user, known_managers

    if not password_stdin:
        raise InputError("users add: pass --password-stdin and pipe the password in; a "
                         "password on the command line would be in the shell's history.")
    cfg = _config(ctx, config)
    known = known_managers(cfg)
    password = sys.stdin.readline().rstrip("\r\n")
    engine = appdb.connect(cfg)
    user = add_user(engine, name, role.value, managers or [], password, known)
    scope = ", ".join(user.managers) if user.managers else "all managers"
    out.print(f"Added {escape(user.role)} {escape(user.name)} ({escape(scope)}) to "
              f"{escape(appdb.database_url(cfg))}.")


@users_app.command("list")
def users_list(ctx: typer.Context, config: ConfigOption = None) -> None:
    """List the users: name, role, managers and whether disabled.

    Example:

    ```sh
    klantwaarde users list
    ```
    """
    from klantwaarde import appdb
    from klantwaarde.web.users import list_users

    cfg = _config(ctx, config)
    found = list_users(appdb.connect(cfg))
    if not found:
        out.print("No users yet; add one with klantwaarde users add NAME --role ROLE ...")
    for user in found:
        state = "  disabled" if user.disabled else ""
        managers = ", ".join(user.managers) if user.managers else "all"
        out.print(f"{escape(user.name)}\t{user.role}\t{escape(managers)}{state}")


@users_app.command("disable")
def users_disable(ctx: typer.Context,
                  name: Annotated[str, typer.Argument(metavar="NAME", help="The user.")],
                  config: ConfigOption = None) -> None:
    """Disable a user: no more logins, and open sessions end.

    Example:

    ```sh
    klantwaarde users disable anna
    ```
    """
    from klantwaarde import appdb
    from klantwaarde.web.users import disable_user

    cfg = _config(ctx, config)
    disable_user(appdb.connect(cfg), name)
    out.print(f"Disabled {escape(name)}; their sessions have ended.")


@app.command()
def demo(
    ctx: typer.Context,
    out_dir: Annotated[Path, typer.Option(
        "--out", metavar="DIR", help="The demo's own folder: new, empty or an earlier demo's, "
        "which each run replaces.")
    ] = Path("demo"),
    customers: Annotated[int, typer.Option(min=100, metavar="N",
                                           help="Customers to simulate.")] = 3000,
    config: ConfigOption = None,
) -> None:
    """Simulate a customer base and run the whole product on it: validate, profitability,
    train and promote, score the last month, its lists and the report, all under --out.

    Example:

    ```sh
    klantwaarde demo --out demo
    klantwaarde demo --out /tmp/demo --customers 10000
    ```
    """
    import time

    from klantwaarde.demo import run_demo
    from klantwaarde.render import print_demo

    started = time.perf_counter()
    with _contract_report(), progress() as step:
        result = run_demo(out_dir, customers, config or ctx.obj, step)
    print_demo(result, time.perf_counter() - started, out)
    _demo_users(result.config, [m.manager for m in result.lists.managers])


def _demo_users(config: Path, managers: list[str]) -> None:
    """Users of the page for the demo, their passwords printed once, and how to start it."""
    from rich.table import Table

    from klantwaarde import appdb
    from klantwaarde.web.users import demo_users

    cfg = load_config(config)
    engine = appdb.connect(cfg)
    made = demo_users(engine, managers)
    engine.dispose()
    table = Table("user", "role", "sees", "password", title="Users of the account managers' "
                  "page (passwords are shown only now)", title_justify="left")
    for user, password in made:
        table.add_row(escape(user.name), user.role,
                      escape(", ".join(user.managers) or "all"), password)
    out.print(table)
    out.print("Start the page and log in with one of them:\n"
              f"  .venv/bin/klantwaarde serve --config {escape(str(config))}\n"
              "  then open http://127.0.0.1:8000")


def main() -> None:
    """Console-script entry point: map errors to exit codes without tracebacks. MLflow logs
    warnings and errors only, not its steps (INFO), and draws no progress bars (copying a
    model's artifacts), unless KLANTWAARDE_DEBUG or the MLflow variable is set."""
    if not os.environ.get("KLANTWAARDE_DEBUG"):
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow is imported
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        app()
    except InputError as exc:
        err.print(f"[red]Error:[/red] {escape(str(exc))}")
        sys.exit(2)
    except Exception as exc:  # the last line of defence: no traceback for users
        if os.environ.get("KLANTWAARDE_DEBUG"):
            raise
        err.print(f"[red]Failed:[/red] {escape(type(exc).__name__)}: {escape(str(exc))}\n"
                  "Set KLANTWAARDE_DEBUG=1 to see the traceback.")
        sys.exit(1)
