"""The application database of the account managers' page: users, sessions, login failures,
the outcomes managers record and an append-only audit trail.

SQLite by default, one file (``app.sqlite``) beside the scores table, in WAL mode with
``synchronous=FULL``: a write acknowledged to a manager is on disk before the answer leaves,
so it survives a crash of the server or the machine. PostgreSQL (or any SQLAlchemy URL) when
``database`` in web.yaml names one.

It sits below the delivery layer because the recorded outcomes are data: ``recorded_contacts``
gives them to the sources as interactions (see ``klantwaarde.recorded``), the treatment record
that training, scoring and evaluate read.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import (
    DDL,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
)

from klantwaarde.config import Config
from klantwaarde.errors import InputError

ROLES = ("manager", "lead", "admin")
KINDS = ("visit", "call", "email")  # the contacts an outcome records: interactions' kinds
RESULTS = ("saved", "follow-up", "not reached", "lost")
NOT_REACHED = "not reached"  # an attempt, not a contact: no treatment
FILE = "app.sqlite"

metadata = MetaData()
users = Table(
    "users", metadata,
    Column("name", String(100), primary_key=True),
    Column("role", String(10), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", DateTime, nullable=False),
)
# a manager's own account-manager codes, or a lead's team
user_managers = Table(
    "user_managers", metadata,
    Column("user_name", String(100), ForeignKey("users.name"), primary_key=True),
    Column("account_manager", String(200), primary_key=True),
)
sessions = Table(
    "sessions", metadata,
    Column("token_hash", String(64), primary_key=True),  # sha256 of the cookie's token
    Column("user_name", String(100), ForeignKey("users.name"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("last_seen", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
)
login_failures = Table(
    "login_failures", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_name", String(200), nullable=False),
    Column("client", String(100), nullable=False),
    Column("at", DateTime, nullable=False),
    Index("ix_login_failures_user", "user_name", "at"),
    Index("ix_login_failures_client", "client", "at"),
)
outcomes = Table(
    "outcomes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String(200), nullable=False),
    Column("account_manager", String(200), nullable=False),
    Column("as_of", Date, nullable=False),  # the scored month whose sheet listed the customer
    Column("sheet", String(20), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("contact_date", Date, nullable=False),
    Column("result", String(20), nullable=False),
    Column("next_step", String(200), nullable=False, default=""),
    Column("note", Text, nullable=False, default=""),
    Column("recorded_by", String(100), nullable=False),
    Column("recorded_at", DateTime, nullable=False),
    Index("ix_outcomes_manager", "account_manager", "as_of"),
    Index("ix_outcomes_customer", "customer_id"),
)
audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("user_name", String(200)),
    Column("client", String(100), nullable=False),
    Column("action", String(30), nullable=False),
    Column("detail", Text, nullable=False, default=""),
)
# append-only: the database itself refuses to change or remove an audit row
for _change in ("UPDATE", "DELETE"):
    event.listen(audit, "after_create", DDL(
        f"CREATE TRIGGER audit_no_{_change.lower()} BEFORE {_change} ON audit "
        "BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END").execute_if(
        dialect="sqlite"))
event.listen(audit, "after_create", DDL(
    "CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit rows are append-only'; END $$; "
    "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()").execute_if(
    dialect="postgresql"))


def now() -> dt.datetime:
    """The wall clock in UTC, without a time zone (as stored): for sessions and the audit."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)  # wall-clock-ok: sessions, audit


def database_url(cfg: Config) -> str:
    """web.yaml's ``database``, or the SQLite file beside the scores table."""
    if cfg.web.database:
        return cfg.web.database
    return f"sqlite:///{sqlite_path(cfg)}"


def sqlite_path(cfg: Config) -> Path:
    """Where the default SQLite database lives: beside the scores table's DuckDB file."""
    return cfg.scoring.store.resolve().parent / FILE


def exists(cfg: Config) -> bool:
    """Whether there is an application database: a configured URL, or the SQLite file."""
    return bool(cfg.web.database) or sqlite_path(cfg).is_file()


def connect(cfg: Config, create: bool = True, connections: int = 5) -> sa.Engine:
    """An engine on the application database that keeps up to ``connections`` open; with
    ``create`` its tables are made where missing (the SQLite file and its folder too)."""
    url = database_url(cfg)
    try:
        engine = sa.create_engine(url, pool_size=connections)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise InputError(f"web.yaml database: {url!r} is not a database URL SQLAlchemy can "
                         f"open ({exc}). Fix: give a URL such as "
                         "postgresql+psycopg://user@host/klantwaarde (with its driver "
                         "installed), or null for SQLite beside the scores.") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if create and not cfg.web.database:
        sqlite_path(cfg).parent.mkdir(parents=True, exist_ok=True)
    if create:
        try:
            metadata.create_all(engine)
        except sa.exc.OperationalError as exc:
            raise InputError(f"web.yaml database: cannot open {_shown(engine)}: "
                             f"{exc.orig}. Fix: make the place writable, or set database "
                             "to another URL.") from None
    return engine


def _sqlite_pragmas(connection: object, _record: object) -> None:
    """WAL (readers never wait for the writer), synchronous=FULL (a commit is on disk when it
    returns, also in WAL mode), a busy wait instead of an error while another writes."""
    cursor = connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _shown(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def recorded_contacts(cfg: Config) -> tuple[pd.DataFrame, str] | None:
    """The contacts recorded on the page as interactions rows (customer_id, date, kind,
    account_manager), and where they come from; None where there is no application database.
    An attempt that did not reach the customer is no contact and is left out."""
    if not exists(cfg):
        return None
    engine = connect(cfg, create=False)
    try:
        if not sa.inspect(engine).has_table("outcomes"):
            return None
        query = sa.select(outcomes.c.customer_id, outcomes.c.contact_date.label("date"),
                          outcomes.c.kind, outcomes.c.account_manager) \
            .where(outcomes.c.result != NOT_REACHED) \
            .order_by(outcomes.c.id)
        with engine.connect() as con:
            rows = con.execute(query).all()
        return (pd.DataFrame(rows, columns=["customer_id", "date", "kind", "account_manager"]),
                _shown(engine))
    finally:
        engine.dispose()
