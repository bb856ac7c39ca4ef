"""Open a source as Ibis tables: a folder of CSV/Parquet files, a ``.duckdb`` file or an Ibis URL.

Nothing is read into Python here: each contract table becomes an Ibis table expression on the
engine (DuckDB for folders and ``.duckdb`` files). Column names are matched case-insensitively
and without surrounding spaces. Files and tables that are not part of the contract are ignored with
a notice.
"""

from __future__ import annotations

import csv
import gzip
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir

from klantwaarde.config import SourceConfig
from klantwaarde.contract import TABLE_NAMES, table_spec
from klantwaarde.engines import postgres, redacted
from klantwaarde.errors import InputError
from klantwaarde.formats import read_formats
from klantwaarde.typed import ISO_POINT, Formats

_FILE_KINDS = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class RawTable:
    """A contract table as found in the source, columns renamed to lower case."""

    name: str
    table: ir.Table
    origin: str  # the file, or the table in a database, it came from
    formats: Formats = ISO_POINT  # how its text is read as numbers and dates
    reading: str = ""  # the same in words, for a CSV file: "decimal comma, ...; dates ..."


@dataclass
class Source:
    """The contract tables of one source and the notices raised while opening it."""

    location: str
    tables: dict[str, RawTable]
    notices: list[str] = field(default_factory=list)


def is_spark(src: str) -> bool:
    """Whether ``src`` (or a Source's location) is read by Spark."""
    return src.startswith("spark:")


def open_source(src: str, cfg: SourceConfig) -> Source:
    """Open ``src`` (folder, ``.duckdb`` file, ``spark:`` location or Ibis URL) and find the
    contract tables in it."""
    if is_spark(src):
        return _open_spark(src)
    if "://" in src:
        return _open_url(src)
    path = Path(src)
    if not path.exists():
        raise InputError(f"Source {src} does not exist. Pass a folder of CSV/Parquet files "
                         "(orders.csv, customers.csv, ...), a .duckdb file or an Ibis URL.")
    if path.is_dir():
        return _open_folder(path, cfg)
    if path.suffix == ".duckdb":
        return _open_database(_duckdb(cfg, str(path), read_only=True), str(path))
    raise InputError(f"Source {src} is a file, but not a .duckdb file. Pass the folder that holds "
                     "the CSV/Parquet files, a .duckdb file or an Ibis URL.")


def _open_spark(src: str) -> Source:
    """A ``spark:`` location: a folder with a Parquet file or folder per table, or a schema of
    the session's catalog."""
    from klantwaarde.engines import spark  # pyspark is an optional extra

    con, location, found = spark.connect(src)
    if found is None:
        return _open_database(con, src, location)
    source = Source(src, {})
    for name, path in sorted(found.items()):
        key = name.strip().lower()
        if key not in TABLE_NAMES:
            source.notices.append(f"{Path(path).name}: '{name}' is not a contract table; "
                                  "ignored.")
            continue
        if key in source.tables:
            raise InputError(f"Table {key} is given twice in {location}: "
                             f"{source.tables[key].origin} and {Path(path).name}. "
                             "Keep one of them.")
        source.tables[key] = _table_of(key, spark.parquet_table(con, key, path),
                                       Path(path).name)
    return source


def _open_url(url: str) -> Source:
    shown = redacted(url)
    if url.split("://", 1)[0].lower() in postgres.SCHEMES:
        con, schema = postgres.connect(url)
        source = _open_database(con, shown, schema)
        postgres.check_typed(source.tables, shown)
        return source
    try:
        con = ibis.connect(url)
    except Exception as exc:  # the backends raise their own types; all mean "cannot connect"
        raise InputError(f"Cannot connect to {shown}: {exc}") from None
    return _open_database(con, shown)


def _open_database(con: ibis.BaseBackend, location: str, database: str | None = None
                   ) -> Source:
    """The contract tables of a database (of schema ``database`` where given; the connection's
    default otherwise), each checked to be readable now: a table the role may not read is an
    input error here, not a failure in the middle of a command."""
    source = Source(location, {})
    where = {} if database is None else {"database": database}
    for name in sorted(con.list_tables(**where)):
        key = name.strip().lower()
        if key not in TABLE_NAMES:
            source.notices.append(f"Table '{name}' in {location} is not a contract table; ignored.")
            continue
        if key in source.tables:
            raise InputError(f"Table {key} is given twice in {location}: "
                             f"'{source.tables[key].origin}' and '{name}'. Keep one of them.")
        try:
            table = con.table(name, **where)
            table.limit(0).execute()
        except Exception as exc:  # each backend raises its own types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"Table {name} in {location} cannot be read: {first}. Fix: grant "
                             "the role SELECT on it, or leave it out of the source.") from None
        source.tables[key] = _table_of(key, table, name)
    return source


def _table_of(key: str, table: ir.Table, origin: str) -> RawTable:
    return RawTable(key, _normalise(table, key, origin), origin)


def _duckdb(cfg: SourceConfig, database: str = ":memory:", read_only: bool = False
            ) -> ibis.BaseBackend:
    """The embedded engine, within ``memory_limit`` where one is set; it spills to the system's
    temporary folder under memory pressure, never to the user's working directory."""
    con = ibis.duckdb.connect(database, read_only=read_only)
    con.raw_sql(f"SET temp_directory = '{tempfile.gettempdir()}/klantwaarde-duckdb'")
    if cfg.memory_limit is not None:
        con.raw_sql(f"SET memory_limit = '{cfg.memory_limit.replace(' ', '')}'")
    return con


def _open_folder(folder: Path, cfg: SourceConfig) -> Source:
    source = Source(str(folder), {})
    con = _duckdb(cfg)
    found: dict[str, tuple[Path, str]] = {}
    for file in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        suffix = next((s for s in _FILE_KINDS if file.name.lower().endswith(s)), "")
        name = file.name[: -len(suffix)].strip().lower()
        if file.is_dir():
            source.notices.append(f"{file.name}/: a folder; ignored (tables are files in "
                                  f"{folder} itself).")
            continue
        if not suffix:
            source.notices.append(f"{file.name}: not a CSV or Parquet file; ignored.")
            continue
        if name not in TABLE_NAMES:
            source.notices.append(f"{file.name}: '{name}' is not a contract table "
                                  f"({', '.join(TABLE_NAMES)}); ignored.")
            continue
        if name in found:
            raise InputError(f"Table {name} is given twice: {found[name][0].name} and "
                             f"{file.name}. Keep one file per table.")
        found[name] = (file, _FILE_KINDS[suffix])
    for name, (file, kind) in found.items():
        if kind == "csv":
            source.tables[name] = _read_csv(con, file, name, cfg)
        else:
            source.tables[name] = _read_parquet(con, file, name)
    return source


def _read_parquet(con: ibis.BaseBackend, file: Path, name: str) -> RawTable:
    try:
        table = con.read_parquet(file)
    except Exception as exc:  # duckdb raises several types for unreadable files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unknown error"
        raise InputError(f"Table {name} ({file.name}) cannot be read as Parquet: {first}. Fix: "
                         "export it again, or as CSV.") from None
    return RawTable(name, _normalise(table, name, file.name), file.name)


def _read_csv(con: ibis.BaseBackend, file: Path, name: str, cfg: SourceConfig) -> RawTable:
    """Read a CSV as text columns with the file's decimal separator and date format; the typed
    view converts them, validation reports failures."""
    if file.stat().st_size == 0:
        raise InputError(f"Table {name} ({file.name}) is empty: no header and no rows. Export the "
                         "table with its header and rows, or leave the file out if the table is "
                         "optional.")
    options = {"header": True, "all_varchar": True, "encoding": cfg.encoding}
    try:
        delimiter = con.con.execute(  # type: ignore[attr-defined]
            "SELECT Delimiter FROM sniff_csv(?, header = true, encoding = ?)",
            [str(file), cfg.encoding],
        ).fetchone()[0]
        table = con.read_csv(file, **options)
        table.limit(0).execute()  # makes DuckDB open the file now, so errors surface here
    except Exception as exc:  # duckdb raises several types for unreadable files
        raise InputError(_unreadable_csv(file, name, cfg, str(exc))) from None
    _check_header(file, name, delimiter, cfg.encoding)
    table = _normalise(table, name, file.name)
    formats, reading = read_formats(table, table_spec(name), file.name, cfg)
    return RawTable(name, table, file.name, formats, reading)


def _check_header(file: Path, name: str, delimiter: str, encoding: str) -> None:
    """DuckDB renames repeated column names silently; a repeated name is an error here."""
    opener = gzip.open if file.name.lower().endswith(".gz") else open
    with opener(file, "rt", encoding=encoding, newline="") as fh:
        header = next(csv.reader(fh, delimiter=delimiter), [])
    _column_names(header, name, file.name)


def _unreadable_csv(file: Path, name: str, cfg: SourceConfig, error: str) -> str:
    if "unicode" in error.lower() or "utf" in error.lower():
        where = _first_undecodable(file, cfg.encoding)
        return (f"Table {name} ({file.name}) is not {cfg.encoding} encoded{where}. Fix: save the "
                "file as UTF-8, or set `encoding: latin-1` in source.yaml of your --config folder "
                "if it comes from a Latin-1 (Windows) export.")
    first = error.strip().splitlines()[0] if error.strip() else "unknown error"
    return f"Table {name} ({file.name}) cannot be read as CSV: {first}"


def _first_undecodable(file: Path, encoding: str) -> str:
    """Line and column of the first value that does not decode, for the error message."""
    with file.open("rb") as fh:
        header = fh.readline()
        names = header.decode(encoding, errors="replace").lstrip("\ufeff").strip()
        sep = ";" if names.count(";") > names.count(",") else ","
        columns = [c.strip().lower() for c in names.split(sep)]
        for number, line in enumerate(fh, start=2):
            try:
                line.decode(encoding)
            except UnicodeDecodeError:
                for column, value in zip(columns, line.split(sep.encode()), strict=False):
                    try:
                        value.decode(encoding)
                    except UnicodeDecodeError:
                        shown = value.decode(encoding, errors="replace").strip()
                        return f": column {column}, line {number}, value {shown!r}"
                return f": line {number}"
    try:
        header.decode(encoding)
    except UnicodeDecodeError:
        return ": in the header line"
    return ""


def _normalise(table: ir.Table, name: str, origin: str) -> ir.Table:
    return table.rename(_column_names(table.columns, name, origin))


def _column_names(columns: list[str] | tuple[str, ...], name: str, origin: str) -> dict[str, str]:
    """Contract name (lower case, spaces as underscores) → name in the source; no repeats."""
    renames: dict[str, str] = {}
    for col in columns:
        key = re.sub(r"\s+", "_", col.strip().lstrip("\ufeff").lower())
        if key in renames:
            raise InputError(f"Table {name} ({origin}) has column {key} twice (as "
                             f"'{renames[key]}' and '{col}'). Keep one of them.")
        renames[key] = col
    return renames
