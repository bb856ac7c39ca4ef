"""The account managers' page over HTTP (Starlette's TestClient): what each user may see,
sessions, CSRF, the login throttle, the audit trail and recorded outcomes."""

from __future__ import annotations

import datetime as dt
import io
import re
import time
from pathlib import Path

import numpy as np
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from klantwaarde import appdb
from klantwaarde.config import Config
from klantwaarde.decisions import HELD_OUT, decided, managers_of
from klantwaarde.lists import SHEETS, build_lists, manager_tables, write_lists
from klantwaarde.scoring.store import (
    SCHEMA,
    month_path,
    publish,
    read_scores,
    staging,
    write_scores,
)
from klantwaarde.web.app import _sorted, create_app
from klantwaarde.web.month import MonthCache
from klantwaarde.web.security import COOKIE
from klantwaarde.web.users import known_managers
from webdata import AS_OF, EARLIER, MANAGERS, PASSWORD, XSS_MANAGER, _rows, scored_base, with_users

CSRF = re.compile(r'name="csrf" value="([^"]*)"')
SQL = ["' OR '1'='1", "x'; DROP TABLE outcomes; --", '" OR ""="', "1; DELETE FROM users"]


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return with_users(scored_base(tmp_path_factory.mktemp("web")))


@pytest.fixture(scope="module")
def app(cfg: Config):
    return create_app(cfg)


def login(client: TestClient, name: str, password: str = PASSWORD):
    form = client.get("/login")
    token = CSRF.search(form.text).group(1)
    return client.post("/login", data={"name": name, "password": password, "csrf": token},
                       follow_redirects=False)


def signed_in(app, name: str) -> TestClient:
    client = TestClient(app)
    assert login(client, name).status_code == 303
    return client


def csrf_of(client: TestClient) -> str:
    return CSRF.search(client.get("/month").text).group(1)


def lists(cfg: Config):
    return build_lists(read_scores(cfg.scoring.parquet, AS_OF), AS_OF, cfg)


def page_ids(text: str) -> list[str]:
    return [m for m in re.findall(r'class="customer" href="/customer\?id=[^"]*">([^<]*)<', text)]


def unescaped(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&#34;", '"') \
        .replace("&quot;", '"').replace("&#39;", "'").replace("&amp;", "&")


def held_out(cfg: Config, manager: str) -> list[str]:
    scores = decided(read_scores(cfg.scoring.parquet, AS_OF), AS_OF, cfg)
    return list(scores[(scores.account_manager == manager) & (scores.retention == HELD_OUT)]
                .customer_id)


def count(cfg: Config, table: sa.Table) -> int:
    engine = appdb.connect(cfg)
    with engine.connect() as con:
        found = con.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    engine.dispose()
    return found


def test_a_manager_sees_the_sheets_of_the_workbooks_and_not_the_held_out(app, cfg) -> None:
    anna = signed_in(app, "anna")
    expected = manager_tables(lists(cfg).tables, "AM001")
    assert sum(len(t) for t in expected.values()) > 0
    for sheet in SHEETS:
        page = anna.get("/month", params={"sheet": sheet})
        assert page.status_code == 200
        assert [unescaped(i) for i in page_ids(page.text)] == list(expected[sheet].customer_id)
    hidden = held_out(cfg, "AM001")
    assert hidden, "the fixture holds some of AM001's customers out"
    for customer in hidden:
        assert anna.get("/customer", params={"id": customer}).status_code == 404
        for sheet in SHEETS:
            assert customer not in anna.get("/month", params={"sheet": sheet}).text


def test_sorting_orders_the_rows_by_a_column_of_the_sheet(app, cfg) -> None:
    anna = signed_in(app, "anna")
    table = manager_tables(lists(cfg).tables, "AM001")["cross-sell"]
    page = anna.get("/month", params={"sheet": "cross-sell", "sort": "cross_sell_margin",
                                      "order": "asc"})
    assert page_ids(page.text) == list(table.sort_values("cross_sell_margin").customer_id)


def test_another_managers_customer_sheet_export_or_form_field_is_not_found(app, cfg) -> None:
    anna = signed_in(app, "anna")
    theirs = manager_tables(lists(cfg).tables, "AM002")
    listed = next(iter(t.customer_id.iat[0] for t in theirs.values() if len(t)))
    before = count(cfg, appdb.outcomes)
    for response in (anna.get("/customer", params={"id": listed}),
                     anna.get("/month", params={"manager": "AM002"}),
                     anna.get("/export.xlsx", params={"manager": "AM002"}),
                     anna.get("/team"), anna.get("/report"),
                     anna.post("/outcomes", data={
                         "csrf": csrf_of(anna), "customer_id": listed, "kind": "call",
                         "contact_date": "2025-07-03", "result": "saved"})):
        assert response.status_code == 404
        assert listed not in response.text and "AM002" not in response.text
    assert count(cfg, appdb.outcomes) == before


def test_a_lead_sees_the_team_and_nothing_else(app, cfg) -> None:
    lead = signed_in(app, "lead")
    team = lead.get("/team")
    assert team.status_code == 200
    shown = re.findall(r'<td><a href="/month\?manager=([^"]*)">', team.text)
    assert shown == ["AM001", "AM002"]
    both = lead.get("/month", params={"sheet": "at risk"})
    expected = lists(cfg).tables["at risk"]
    expected = expected[expected.account_manager.isin(["AM001", "AM002"])]
    assert sorted(page_ids(both.text)) == sorted(expected.customer_id)
    other = next(t.customer_id.iat[0] for t in manager_tables(lists(cfg).tables, "AM003")
                 .values() if len(t))
    assert lead.get("/month", params={"manager": "AM003"}).status_code == 404
    assert lead.get("/customer", params={"id": other}).status_code == 404
    assert lead.get("/export.xlsx", params={"manager": "AM003"}).status_code == 404
    assert lead.get("/report").status_code == 404


def test_an_admin_sees_every_manager_and_the_report(app, cfg, tmp_path: Path) -> None:
    admin = signed_in(app, "admin")
    team = admin.get("/team")
    assert len(re.findall(r'<td><a href="/month\?manager=', team.text)) == len(MANAGERS)
    held = held_out(cfg, "AM001")[0]
    assert "held out" in admin.get("/customer", params={"id": held}).text
    missing = admin.get("/report")
    assert missing.status_code == 404 and "klantwaarde report --as-of 2025-06-30" in missing.text
    report = Path(cfg.web.report.replace("{as_of}", AS_OF.isoformat()))
    report.write_text("<html><body><h1>Management report 2025-06-30</h1></body></html>")
    try:
        shown = admin.get("/report")
        assert shown.status_code == 200 and "Management report 2025-06-30" in shown.text
        assert "script-src" not in shown.headers["content-security-policy"]
    finally:
        report.unlink()


def test_a_disabled_user_cannot_log_in_and_disabling_ends_a_session(app, cfg) -> None:
    client = TestClient(app)
    refused = login(client, "gone")
    assert refused.status_code == 401 and COOKIE not in refused.cookies
    assert client.get("/month", follow_redirects=False).headers["location"] == "/login"
    from klantwaarde.web.users import add_user, disable_user

    engine = appdb.connect(cfg)
    add_user(engine, "brief", "manager", ["AM003"], PASSWORD, MANAGERS)
    brief = signed_in(app, "brief")
    assert brief.get("/month").status_code == 200
    disable_user(engine, "brief")
    assert brief.get("/month", follow_redirects=False).headers["location"] == "/login"
    assert login(TestClient(app), "brief").status_code == 401


def test_pages_need_a_login(app) -> None:
    client = TestClient(app)
    for path in ("/", "/month", "/customer?id=C0001", "/export.xlsx", "/team", "/report"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] in ("/login", "/month")
    assert client.post("/outcomes", data={"customer_id": "C0001"}).status_code == 403


def test_a_form_without_its_csrf_token_or_with_another_is_refused(app, cfg) -> None:
    anna = signed_in(app, "anna")
    listed = manager_tables(lists(cfg).tables, "AM001")["at risk"].customer_id.iat[0]
    form = {"customer_id": listed, "kind": "call", "contact_date": "2025-07-03",
            "result": "saved"}
    before = count(cfg, appdb.outcomes)
    other = csrf_of(signed_in(app, "lead"))  # a valid token, of another session
    for token in (None, "", "forged", other):
        data = form if token is None else form | {"csrf": token}
        assert anna.post("/outcomes", data=data).status_code == 403
        assert anna.post("/logout", data={} if token is None else {"csrf": token}
                         ).status_code == 403
    assert count(cfg, appdb.outcomes) == before
    assert anna.get("/month").status_code == 200  # still logged in
    client = TestClient(app)
    client.get("/login")
    no_token = client.post("/login", data={"name": "anna", "password": PASSWORD},
                           follow_redirects=False)
    assert no_token.status_code == 403 and COOKIE not in no_token.cookies


def test_sql_metacharacters_in_every_parameter_change_nothing(app, cfg) -> None:
    anna = signed_in(app, "anna")
    default = anna.get("/month").text
    users_before, outcomes_before = count(cfg, appdb.users), count(cfg, appdb.outcomes)
    listed = manager_tables(lists(cfg).tables, "AM001")["at risk"].customer_id.iat[0]
    for text in SQL:
        assert anna.get("/month", params={"manager": text}).status_code == 404
        assert anna.get("/month", params={"sheet": text}).status_code == 404
        assert page_ids(anna.get("/month", params={"sort": text}).text) == page_ids(default)
        assert page_ids(anna.get("/month", params={"order": text}).text) == page_ids(default)
        assert anna.get("/customer", params={"id": text}).status_code == 404
        assert anna.get("/export.xlsx", params={"manager": text}).status_code == 404
        assert login(TestClient(app), text, text).status_code == 401
        assert login(TestClient(app), "anna", text).status_code == 401
        token = csrf_of(anna)
        assert anna.post("/outcomes", data={"csrf": token, "customer_id": text, "kind": "call",
                                            "contact_date": "2025-07-03", "result": "saved"}
                         ).status_code == 404
        for field in ("kind", "contact_date", "result"):
            form = {"csrf": token, "customer_id": listed, "kind": "call",
                    "contact_date": "2025-07-03", "result": "saved"} | {field: text}
            assert anna.post("/outcomes", data=form).status_code == 400
    assert (count(cfg, appdb.users), count(cfg, appdb.outcomes)) == (users_before,
                                                                      outcomes_before)
    note = SQL[1]
    done = anna.post("/outcomes", data={"csrf": csrf_of(anna), "customer_id": listed,
                                        "kind": "email", "contact_date": "2025-07-04",
                                        "result": "follow-up", "next_step": SQL[0],
                                        "note": note}, follow_redirects=False)
    assert done.status_code == 303
    assert count(cfg, appdb.outcomes) == outcomes_before + 1
    page = anna.get("/customer", params={"id": listed}).text
    assert unescaped(page).count(note) == 1 and unescaped(page).count(SQL[0]) == 1
    assert count(cfg, appdb.users) == users_before


def test_wrong_passwords_are_throttled_per_user_and_per_client(tmp_path: Path) -> None:
    cfg = with_users(scored_base(tmp_path, login_failures=3, client_failures=5))
    app = create_app(cfg)
    client = TestClient(app)
    for _ in range(3):
        assert login(client, "anna", "wrong password").status_code == 401
    throttled = login(client, "anna")  # the right password, too late
    assert throttled.status_code == 429 and COOKIE not in throttled.cookies
    assert "Too many failed logins" in throttled.text
    assert login(client, "bram").status_code == 303  # another user from the same client
    for _ in range(2):
        assert login(TestClient(app), "nobody", "wrong password").status_code == 401
    assert login(TestClient(app), "lead").status_code == 429  # the client: 5 failures
    engine = appdb.connect(cfg)
    with engine.connect() as con:
        actions = con.execute(sa.select(appdb.audit.c.action)).scalars().all()
    assert actions.count("login failed") == 5 and actions.count("login throttled") == 2


def test_a_login_renews_the_session(app) -> None:
    client = TestClient(app)
    client.cookies.set(COOKIE, "chosen-by-an-attacker", domain="testserver.local")
    assert login(client, "anna").status_code == 303
    first = client.cookies.get(COOKIE)
    assert first and first != "chosen-by-an-attacker"
    assert login(client, "anna").status_code == 303
    second = client.cookies.get(COOKIE)
    assert second != first
    old = TestClient(app)
    old.cookies.set(COOKIE, first, domain="testserver.local")
    assert old.get("/month", follow_redirects=False).headers["location"] == "/login"
    assert client.get("/month").status_code == 200


def test_the_cookie_is_httponly_samesite_and_secure_over_https(app) -> None:
    for base, secure in (("http://testserver", False), ("https://testserver", True)):
        client = TestClient(app, base_url=base)
        response = login(client, "anna")
        cookie = next(v for k, v in response.headers.multi_items()
                      if k == "set-cookie" and v.startswith(COOKIE))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert ("Secure" in cookie) is secure
        assert "script-src" not in client.get("/month").headers["content-security-policy"]


def test_the_audit_trail_records_and_cannot_be_changed(app, cfg) -> None:
    anna = signed_in(app, "anna")
    login(TestClient(app), "anna", "wrong password")
    assert anna.get("/export.xlsx").status_code == 200
    for method in ("PUT", "PATCH", "DELETE"):
        for path in ("/audit", "/outcomes", "/month", "/customer"):
            assert anna.request(method, path).status_code in (404, 405)
    engine = appdb.connect(cfg)
    with engine.connect() as con:
        actions = set(con.execute(sa.select(appdb.audit.c.action)).scalars())
    assert {"login", "login failed", "export"} <= actions
    for statement in ("UPDATE audit SET action = 'nothing'", "DELETE FROM audit"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as con:
            con.execute(sa.text(statement))
    with engine.connect() as con:
        assert "nothing" not in set(con.execute(sa.select(appdb.audit.c.action)).scalars())


def test_an_outcome_is_recorded_listed_and_counted(app, cfg) -> None:
    anna = signed_in(app, "anna")
    listed = manager_tables(lists(cfg).tables, "AM001")["win-back"].customer_id.iat[0]
    form = {"csrf": csrf_of(anna), "customer_id": listed, "kind": "visit",
            "contact_date": "2025-07-08", "result": "saved", "next_step": "send an offer",
            "note": "wants the old discount back"}
    wrong = anna.post("/outcomes", data=form | {"contact_date": "2025-06-01"})
    assert wrong.status_code == 400 and "the contact falls after 2025-06-30" in wrong.text
    done = anna.post("/outcomes", data=form, follow_redirects=False)
    assert done.status_code == 303
    page = anna.get(done.headers["location"])
    assert "wants the old discount back" in page.text and "send an offer" in page.text
    sheet = anna.get("/month", params={"sheet": "win-back"}).text
    assert "saved (visit, 2025-07-08)" in sheet
    team = signed_in(app, "lead").get("/team").text
    row = re.search(r'manager=AM001">AM001</a></td>((?:<td>\d+</td>){4})', team).group(1)
    listed_n, contacted, saved, _ = map(int, re.findall(r"\d+", row))
    assert listed_n == sum(len(manager_tables(lists(cfg).tables, "AM001")[s])
                           for s in ("at risk", "win-back", "cross-sell"))
    assert contacted >= 1 and saved >= 1
    assert "customer " + listed in " ".join(
        appdb.connect(cfg).connect().execute(sa.select(appdb.audit.c.detail)).scalars())


def test_the_export_is_the_managers_workbook_of_klantwaarde_lists(app, cfg,
                                                                  tmp_path: Path) -> None:
    anna = signed_in(app, "anna")
    response = anna.get("/export.xlsx")
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    folder = write_lists(lists(cfg), tmp_path / "lists")
    stem = next(m.file_stem for m in folder.managers if m.manager == "AM001")
    written = openpyxl.load_workbook(tmp_path / "lists" / "managers" / f"{stem}.xlsx")
    assert book.sheetnames == written.sheetnames == list(SHEETS)
    for name in SHEETS:
        assert list(book[name].values) == list(written[name].values)
    assert any(book[name].max_row > 1 for name in SHEETS)


def test_names_holding_html_are_escaped(app) -> None:
    xss = signed_in(app, "xss")
    for page in (xss.get("/month"), xss.get("/team"), xss.get("/customer", params={
            "id": "C3000"})):
        assert "<script>" not in page.text and "onerror=" not in page.text.replace(
            "onerror=&#34;", "")
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in xss.get("/month").text
    assert XSS_MANAGER not in xss.get("/month").text


def test_a_newer_month_is_shown_once_scored(tmp_path: Path) -> None:
    cfg = with_users(scored_base(tmp_path))
    anna = signed_in(create_app(cfg), "anna")
    assert "Sheets of 2025-06-30" in anna.get("/month").text
    later = dt.date(2025, 7, 31)
    write_scores(cfg.scoring.store, cfg.scoring.parquet, later,
                 pa.Table.from_pylist(_rows(later, 3), schema=SCHEMA))
    assert "Sheets of 2025-07-31" in anna.get("/month").text


def test_months_written_as_folders_of_part_files_are_shown(tmp_path: Path) -> None:
    """Spark writes a month as a folder of part files (``store.publish``): the sheets, the
    history of the months and the manager codes read it as they read a file."""
    cfg = with_users(scored_base(tmp_path))
    for month, seed in ((EARLIER, 1), (AS_OF, 2)):
        table = pa.Table.from_pylist(_rows(month, seed), schema=SCHEMA)
        folder = staging(cfg.scoring.parquet, month)
        folder.mkdir()
        half = table.num_rows // 2
        pq.write_table(table.slice(0, half), folder / "part-0.parquet")
        pq.write_table(table.slice(half), folder / "part-1.parquet")
        publish(cfg.scoring.parquet, month, folder)
        assert month_path(cfg.scoring.parquet, month).is_symlink()
    month = MonthCache(cfg).get()
    assert month is not None and month.months == (EARLIER, AS_OF)
    earlier = read_scores(cfg.scoring.parquet, EARLIER).set_index("customer_id")
    at = month.position(str(earlier.index[0]))
    assert month.history_of(at)[0]["churn_probability"] == pytest.approx(
        earlier.churn_probability.iloc[0], rel=1e-6)  # float32
    assert set(known_managers(cfg)) == set(managers_of(
        read_scores(cfg.scoring.parquet, AS_OF).account_manager, cfg.lists.unassigned))
    assert "Sheets of 2025-06-30" in signed_in(create_app(cfg), "anna").get("/month").text


def test_the_month_is_loaded_when_the_server_starts(tmp_path: Path) -> None:
    app = create_app(with_users(scored_base(tmp_path)))
    months = app.state.page.months
    assert months.loaded is None
    with TestClient(app):  # the server's startup, before any request
        deadline = time.monotonic() + 60
        while months.loaded is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert months.loaded is not None and months.loaded.as_of == AS_OF


def test_sheet_counts_and_rows_agree_for_one_manager_and_a_team(app, cfg) -> None:
    month = app.state.page.months.get()
    for managers in (["AM001"], ["AM001", "AM002"], list(MANAGERS), ["nobody"]):
        for sheet in SHEETS:
            rows = month.rows(sheet, managers)
            assert month.count(sheet, managers) == len(rows)
            records = month.records(sheet, managers)
            assert repr(records) == repr(rows.to_dict("records"))  # NaN as NaN
            for column in rows.columns:
                if rows[column].map(lambda v: isinstance(v, list | np.ndarray)).any():
                    continue  # lists: pandas does not sort them
                for ascending in (True, False):
                    expected = rows.sort_values([column, "customer_id"],
                                                ascending=[ascending, True],
                                                na_position="last", kind="stable")
                    assert [r["customer_id"] for r in _sorted(records, column, ascending)] \
                        == list(expected.customer_id), (sheet, column, ascending)
