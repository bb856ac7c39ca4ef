"""The page's application database on a real PostgreSQL server (web.yaml ``database``): users,
sessions, outcomes and an append-only audit trail, as on the default SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from engines import PostgresServer, pg_server  # noqa: F401 (the session fixture pg)
from klantwaarde import appdb
from klantwaarde.lists import manager_tables
from klantwaarde.web.app import create_app
from test_web import csrf_of, lists, signed_in
from webdata import scored_base, with_users


def test_the_page_keeps_users_outcomes_and_audit_in_postgres(pg: PostgresServer,
                                                              tmp_path: Path) -> None:
    url = pg.url().replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0]
    with sa.create_engine(f"{url}/postgres", isolation_level="AUTOCOMMIT").connect() as con:
        con.execute(sa.text("CREATE DATABASE klantwaarde_app"))
    cfg = with_users(scored_base(tmp_path, database=f"{url}/klantwaarde_app"))
    assert not appdb.sqlite_path(cfg).exists()
    app = create_app(cfg)
    anna = signed_in(app, "anna")
    listed = manager_tables(lists(cfg).tables, "AM001")["win-back"].customer_id.iat[0]
    done = anna.post("/outcomes", data={
        "csrf": csrf_of(anna), "customer_id": listed, "kind": "call",
        "contact_date": "2025-07-09", "result": "saved", "next_step": "", "note": "kept"},
        follow_redirects=False)
    assert done.status_code == 303
    assert "saved (call, 2025-07-09)" in anna.get("/month", params={"sheet": "win-back"}).text
    assert TestClient(app).post("/login", data={"name": "gone", "password": "x"}
                                ).status_code != 303
    contacts, _ = appdb.recorded_contacts(cfg)
    assert list(contacts.customer_id) == [listed]
    engine = appdb.connect(cfg)
    with engine.connect() as con:
        actions = set(con.execute(sa.select(appdb.audit.c.action)).scalars())
    assert {"login", "outcome"} <= actions
    for statement in ("UPDATE audit SET action = 'nothing'", "DELETE FROM audit",
                      "TRUNCATE audit"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as con:
            con.execute(sa.text(statement))
    engine.dispose()
