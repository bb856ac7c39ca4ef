"""PostgreSQL: a source is ``postgresql://user[:password]@host[:port]/database[?schema=S]``.

The tables are read inside the database through Ibis' PostgreSQL backend: every aggregation runs
as SQL on the server, and only aggregates (and, at the model boundary, the feature rows) come
back. The history's panels are kept in temporary tables of the session, which any role may
create unless the database's TEMPORARY privilege was revoked. The role needs no other right than
SELECT on the contract tables (and USAGE on their schema). The password may also come from
``PGPASSWORD`` or ``~/.pgpass``, as for any libpq client.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import ibis

from klantwaarde.contract import TABLE_NAMES, Kind, table_spec
from klantwaarde.engines import redacted
from klantwaarde.errors import InputError

SCHEMES = ("postgres", "postgresql")


def connect(url: str) -> tuple[ibis.BaseBackend, str | None]:
    """A connection to the database of ``url`` and the schema to read (None: the role's
    search_path); an input error that says what is wrong when the server cannot be reached, the
    role is refused or the database or schema does not exist."""
    import psycopg

    parts = urlsplit(url)
    shown = redacted(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    schema = query.pop("schema", None)
    if query:
        raise InputError(f"--source {shown}: unknown option(s) {', '.join(sorted(query))}; a "
                         "PostgreSQL source takes only ?schema=NAME.")
    database = unquote(parts.path.lstrip("/")) or None
    kwargs = {"host": parts.hostname or "localhost", "port": parts.port or 5432,
              "user": unquote(parts.username) if parts.username else None,
              "password": unquote(parts.password) if parts.password else None,
              "database": database}
    try:
        con = ibis.postgres.connect(**{k: v for k, v in kwargs.items() if v is not None})
    except psycopg.OperationalError as exc:
        raise InputError(_refused(shown, kwargs, str(exc))) from None
    con.compiler = _compiler()  # this connection's queries only
    if schema is not None:
        with con.con.cursor() as cur:  # type: ignore[attr-defined]
            found = cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                                (schema,)).fetchone()
            if found is None:
                schemas = [r[0] for r in cur.execute(
                    "SELECT DISTINCT table_schema FROM information_schema.tables WHERE "
                    "table_schema NOT IN ('pg_catalog', 'information_schema') "
                    "ORDER BY 1").fetchall()]
                raise InputError(f"--source {shown}: database {database or kwargs['user']} has "
                                 f"no schema {schema!r} (schemas with tables the role can see: "
                                 f"{', '.join(schemas) or 'none'}). Fix: correct ?schema=.")
    _check_readable(con, schema, shown)
    return con, schema


def _check_readable(con: ibis.BaseBackend, schema: str | None, shown: str) -> None:
    """An input error for contract tables that exist but the role may not read: PostgreSQL
    lists only readable tables, so they would otherwise look absent."""
    with con.con.cursor() as cur:  # type: ignore[attr-defined]
        rows = cur.execute(
            "SELECT schemaname, tablename FROM pg_catalog.pg_tables "
            "WHERE schemaname = coalesce(%s, current_schema()) AND NOT has_table_privilege("
            "quote_ident(schemaname) || '.' || quote_ident(tablename), 'SELECT')",
            (schema,)).fetchall()
    locked = sorted(f"{s}.{t}" for s, t in rows if t.strip().lower() in TABLE_NAMES)
    if locked:
        raise InputError(f"--source {shown}: the role may not read table(s) "
                         f"{', '.join(locked)}. Fix: GRANT SELECT ON {locked[0]} (and the "
                         "others) TO the role of --source.")


def _refused(shown: str, kwargs: dict, error: str) -> str:
    """The message for a connection that failed, by what libpq says went wrong."""
    where = f"PostgreSQL at {kwargs['host']}:{kwargs['port']}"
    lower = error.lower()
    last = [line.strip() for line in error.strip().splitlines() if line.strip()]
    detail = last[0] if last else "unknown error"
    if "password authentication failed" in lower or "no password supplied" in lower:
        return (f"Cannot connect to {shown}: {where} refused user {kwargs['user']!r}: wrong or "
                "missing password. Fix: correct the password in --source, or set PGPASSWORD or "
                "~/.pgpass.")
    if "does not exist" in lower and "database" in lower:
        return (f"Cannot connect to {shown}: {where} has no database "
                f"{kwargs['database']!r}. Fix: correct the database name in --source.")
    if "role" in lower and "does not exist" in lower:
        return (f"Cannot connect to {shown}: {where} has no role {kwargs['user']!r}. Fix: "
                "correct the user in --source.")
    if "connection refused" in lower or "could not connect" in lower \
            or "timeout" in lower or "could not translate host name" in lower:
        return (f"Cannot connect to {shown}: no PostgreSQL server answers at {kwargs['host']}:"
                f"{kwargs['port']} ({detail.removeprefix('connection failed: ')}). Fix: start "
                "the server, or correct host and port in --source; the server must accept TCP/IP "
                "connections from this machine (listen_addresses, pg_hba.conf).")
    return f"Cannot connect to {shown}: {detail}"


def check_typed(tables: dict, shown: str) -> None:
    """Dates and amounts stored as text cannot be read: PostgreSQL has no cast that gives null
    for a value that does not convert (it fails the whole query). An input error naming the
    columns and the fix, a view with typed columns. ``tables``: contract name → RawTable."""
    text = []
    for name, raw in tables.items():
        schema = raw.table.schema()
        for col in table_spec(name).columns:
            if col.name in schema and col.kind in (Kind.DATE, Kind.AMOUNT, Kind.NUMBER) \
                    and schema[col.name].is_string():
                text.append(f"{name}.{col.name} ({col.kind.value})")
    if text:
        raise InputError(f"--source {shown}: {', '.join(text)} stored as text; klantwaarde "
                         "reads dates and numbers from PostgreSQL in typed columns. Fix: create "
                         "a view that casts them (e.g. order_date::date, gross_amount::numeric) "
                         "in a schema of its own and pass ?schema= of that view.")


def _compiler():  # noqa: ANN202 (the class comes from an optional import)
    """Ibis' PostgreSQL compiler, with every float literal typed as a double.

    PostgreSQL reads a literal such as ``15.0`` as a decimal, so an expression that Ibis types
    as a double (a count times a cost rate, a CASE between 0.0 and 0.1) comes back as a
    decimal, which does not convert to the double that Ibis announced. Cast, it is a double, as
    on DuckDB and Spark.
    """
    import math

    from ibis.backends.sql.compilers.postgres import PostgresCompiler

    class DoubleLiterals(PostgresCompiler):
        def visit_NonNullLiteral(self, op, *, value, dtype):  # noqa: N802 (Ibis' name)
            if dtype.is_floating() and math.isfinite(value):
                return self.cast(self.visit_DefaultLiteral(op, value=value, dtype=dtype), dtype)
            return super().visit_NonNullLiteral(op, value=value, dtype=dtype)

    return DoubleLiterals()
