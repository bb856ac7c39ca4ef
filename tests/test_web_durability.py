"""Outcomes survive a crash: the server killed with SIGKILL while managers record loses
nothing it acknowledged."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from klantwaarde import appdb
from klantwaarde.lists import build_lists, manager_tables
from klantwaarde.scoring.store import read_scores
from webdata import AS_OF, PASSWORD, Server, scored_base, with_users

CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def _client(url: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=10)
    token = CSRF.search(client.get("/login").text).group(1)
    assert client.post("/login", data={"name": "anna", "password": PASSWORD,
                                       "csrf": token}).status_code == 303
    return client


def test_acknowledged_outcomes_survive_a_sigkill_and_a_restart(tmp_path: Path) -> None:
    cfg = with_users(scored_base(tmp_path))
    lists = build_lists(read_scores(cfg.scoring.parquet, AS_OF), AS_OF, cfg)
    listed = next(t.customer_id.iat[0] for t in manager_tables(lists.tables, "AM001").values()
                  if len(t))
    server = Server(tmp_path / "config").start()
    acknowledged: list[str] = []
    try:
        client = _client(server.url)
        token = CSRF.search(client.get("/month").text).group(1)

        def record() -> None:
            for i in range(100_000):
                note = f"outcome number {i}"
                try:
                    response = client.post("/outcomes", data={
                        "csrf": token, "customer_id": listed, "kind": "call",
                        "contact_date": "2025-07-02", "result": "follow-up", "note": note})
                except httpx.HTTPError:
                    return  # the server is gone
                if response.status_code == 303:
                    acknowledged.append(note)

        writer = threading.Thread(target=record)
        writer.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill()  # while the writer is recording
        writer.join(timeout=30)
        assert len(acknowledged) >= 20
        server = Server(tmp_path / "config").start()
        page = _client(server.url).get("/customer", params={"id": listed}).text
        shown = set(re.findall(r"outcome number \d+", page))
        assert set(acknowledged) <= shown
        engine = appdb.connect(cfg)
        with engine.connect() as con:
            stored = set(con.execute(sa.select(appdb.outcomes.c.note)).scalars())
        assert set(acknowledged) <= stored
        assert len(stored) - len(acknowledged) <= 1  # at most the one cut off mid-answer
    finally:
        server.stop()
