"""The account managers' page: a server-rendered Starlette application.

Routes (every page but the login needs a session; POSTs need the session's CSRF token):

    GET  /login, POST /login, POST /logout
    GET  /month?manager=&sheet=&sort=&order=   the sheets of the newest scored month
    GET  /customer?id=                          one customer: scores, reasons, history, outcomes
    POST /outcomes                              record what was done about a listed customer
    GET  /export.xlsx?manager=                  the lists as the workbook of klantwaarde lists
    GET  /team                                  a lead's (or admin's) progress per manager
    GET  /report                                the management report (admin)
    GET  /static/...                            style sheet

All data goes through ``scope.Visible`` (the one place that scopes to the user's managers);
templates escape everything (Jinja2 autoescape), and the Content-Security-Policy allows no
script at all.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import secrets
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio
import jinja2
import numpy as np
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from klantwaarde import appdb
from klantwaarde.config import Config
from klantwaarde.errors import InputError
from klantwaarde.lists import EUR, PERCENT, SHEETS, file_stems, workbook_bytes
from klantwaarde.web import forms
from klantwaarde.web.chart import line_chart
from klantwaarde.web.month import Month, MonthCache
from klantwaarde.web.scope import NotFound, Visible
from klantwaarde.web.security import COOKIE, LOGIN_COOKIE, LoginRefused, Session, Sessions, same
from klantwaarde.web.security import write_audit as audit_row

HERE = Path(__file__).parent
# requests worked on at once, each in a thread: the work is Python under one lock (the GIL),
# so more threads only wait for each other; each keeps its database connection open
THREADS = 8
TEAM_PAGE = 25  # more managers than this: pick one before the sheets are shown
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SCORES = [("churn_probability", "churn probability"), ("future_net_margin", "future net margin"),
          ("margin_at_risk", "margin at risk"), ("contact_effect", "effect of a contact"),
          ("expected_saved_margin", "expected saved margin"),
          ("upgrade_probability", "upgrade probability"),
          ("next_best_categories", "next-best categories"),
          ("cross_sell_margin", "cross-sell margin"), ("revenue", "revenue (12 months)"),
          ("net_margin", "net margin (12 months)"), ("tier", "tier"), ("category", "category"),
          ("cell", "qualification"), ("policy", "policy"),
          ("days_since_last_order", "days since the last order")]


class SecurityHeaders:
    """Headers on every response: no script may run, no framing, no sniffing; pages are not
    cached (the style sheet may be)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", CSP)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "same-origin")
                if not scope["path"].startswith("/static/"):
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with)


def _cell(value: object, column: str) -> str:
    """A value as shown in a table."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if column in PERCENT or column == "contact_effect":
        return f"{float(value):.1%}"
    if column in EUR or column == "adoption_margin":
        return f"EUR {float(value):,.0f}"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1 else f"{value:,.0f}"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, list(value)))
    return str(value)


def _link(path: str, **params: object) -> str:
    """A URL with its query, every value encoded."""
    given = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(given)}" if given else path


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["cell"] = _cell
    env.globals["link"] = _link
    return Jinja2Templates(env=env)


def _sorted(rows: list[dict[str, object]], column: str, ascending: bool
            ) -> list[dict[str, object]]:
    """The rows by ``column`` (empty values last), ties by customer."""
    def empty(value: object) -> bool:
        return value is None or (isinstance(value, float) and math.isnan(value))

    present = sorted((r for r in rows if not empty(r[column])), key=lambda r: r["customer_id"])
    present.sort(key=lambda r: r[column], reverse=not ascending)  # stable: ties keep the order
    return present + sorted((r for r in rows if empty(r[column])),
                            key=lambda r: r["customer_id"])


def _texts(value: object) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [str(v) for v in value]  # type: ignore[attr-defined]


class Page:
    """The routes, over one configuration, application database and month cache."""

    def __init__(self, cfg: Config, engine: sa.Engine) -> None:
        self.cfg = cfg
        self.engine = engine
        self.sessions = Sessions(engine, cfg.web)
        self.months = MonthCache(cfg)
        self.templates = _templates()

    # -- helpers ------------------------------------------------------------------------------

    def render(self, request: Request, name: str, status: int = 200,
               session: Session | None = None, **context: Any) -> HTMLResponse:
        context |= {"user": session.user if session else None,
                    "csrf": session.csrf if session else ""}
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    def session(self, request: Request) -> Session | None:
        return self.sessions.current(request.cookies.get(COOKIE))

    def visible(self, session: Session) -> Visible:
        month = self.months.get()
        if month is None:
            raise InputError(f"No scored month yet under {self.cfg.scoring.parquet}: run "
                             "klantwaarde score --source SRC --as-of DATE first.")
        return Visible(month, session.user, self.engine)

    @staticmethod
    def client(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def secure(self, request: Request) -> bool:
        return self.cfg.web.secure_cookies == "always" or request.url.scheme == "https"

    # -- login and logout ---------------------------------------------------------------------

    def login_form(self, request: Request, message: str = "", status: int = 200) -> Response:
        token = secrets.token_urlsafe(24)
        response = self.render(request, "login.html", status, login_token=token,
                               message=message)
        response.set_cookie(LOGIN_COOKIE, token, max_age=3600, path="/login", httponly=True,
                            samesite="strict", secure=self.secure(request))
        return response

    def get_login(self, request: Request) -> Response:
        """The login form, also to someone logged in: a login replaces the session."""
        return self.login_form(request)

    async def post_login(self, request: Request) -> Response:
        form = await request.form()
        if not same(form.get("csrf"), request.cookies.get(LOGIN_COOKIE, "")):  # type: ignore
            return self.login_form(request, "The login form had expired; log in again.", 403)
        name, password = str(form.get("name", "")), str(form.get("password", ""))
        try:
            token, _ = await run_in_threadpool(self.sessions.login, name, password,
                                               self.client(request),
                                               request.cookies.get(COOKIE))
        except LoginRefused as refused:
            return self.login_form(request, str(refused), refused.status)
        response = RedirectResponse("/month", 303)
        response.set_cookie(COOKIE, token, max_age=int(self.cfg.web.session_hours * 3600),
                            path="/", httponly=True, samesite="lax", secure=self.secure(request))
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    async def post_logout(self, request: Request) -> Response:
        form = await request.form()
        session = await run_in_threadpool(self.session, request)
        if session is None:
            return RedirectResponse("/login", 303)
        if not same(form.get("csrf"), session.csrf):  # type: ignore[arg-type]
            return self.refused(request, session)
        await run_in_threadpool(self.sessions.logout, session, self.client(request))
        response = RedirectResponse("/login", 303)
        response.delete_cookie(COOKIE, path="/")
        return response

    def refused(self, request: Request, session: Session | None) -> Response:
        return self.render(request, "message.html", 403, session, title="Refused",
                           message="The form's security token is missing or wrong; reload the "
                                   "page and submit it again.")

    # -- pages --------------------------------------------------------------------------------

    def home(self, request: Request) -> Response:
        return RedirectResponse("/month", 303)

    def month_page(self, request: Request) -> Response:
        session = self.session(request)
        if session is None:
            return RedirectResponse("/login", 303)
        visible = self.visible(session)
        q = request.query_params
        wanted, sheet = q.get("manager"), q.get("sheet") or SHEETS[0]
        managers = visible.managers(wanted)
        if sheet not in SHEETS:
            raise NotFound(sheet)
        month = visible.month
        if len(managers) > TEAM_PAGE:
            return self.render(request, "pick.html", session=session, month=month,
                               managers=managers)
        rows = visible.records(sheet, managers)
        sort, order = q.get("sort", ""), q.get("order", "desc")
        columns = [c for c in month.columns[sheet]
                   if c not in ("account_manager", "rank") or (c == "account_manager"
                                                               and len(managers) > 1)]
        if sort in month.columns[sheet]:
            rows = _sorted(rows, sort, order == "asc")
        counts = {s: visible.count(s, managers) for s in SHEETS}
        latest = visible.latest_results(managers)
        return self.render(request, "month.html", session=session, month=month, sheet=sheet,
                           sheets=SHEETS, counts=counts, managers=managers,
                           all_managers=visible.managers(), manager=wanted or "",
                           columns=columns, rows=rows, sort=sort,
                           order=order, latest=latest)

    def customer_page(self, request: Request) -> Response:
        session = self.session(request)
        if session is None:
            return RedirectResponse("/login", 303)
        return self._customer(request, session, self.visible(session),
                              request.query_params.get("id", ""), {}, {}, 200)

    def _customer(self, request: Request, session: Session, visible: Visible,
                  customer_id: str, errors: dict[str, str], values: dict[str, str],
                  status: int) -> Response:
        customer = visible.customer(customer_id)
        month: Month = visible.month
        row = customer.row
        history = month.history_of(customer.position)
        chart = line_chart([h["as_of"] for h in history], {
            "revenue (12 months)": ("revenue", [h["revenue"] for h in history]),
            "net margin (12 months)": ("margin", [h["net_margin"] for h in history])})
        reasons = {"churn": _texts(row.churn_reasons), "future margin": _texts(
            row.margin_reasons), "upgrade": _texts(row.upgrade_reasons)}
        return self.render(
            request, "customer.html", status, session, month=month, row=row,
            customer_id=customer_id, sheet=customer.sheet, scores=SCORES, reasons=reasons,
            chart=chart, history=history, outcomes=visible.outcomes_of(customer_id),
            kinds=appdb.KINDS, results=appdb.RESULTS, errors=errors, values=values,
            first_day=month.as_of + dt.timedelta(days=1))

    async def post_outcome(self, request: Request) -> Response:
        form = await request.form()
        session = await run_in_threadpool(self.session, request)
        if session is None:
            return self.render(request, "message.html", 403, title="Refused",
                               message="Log in first.")
        if not same(form.get("csrf"), session.csrf):  # type: ignore[arg-type]
            return self.refused(request, session)
        values = {k: str(v) for k, v in form.items() if k != "csrf"}
        return await run_in_threadpool(self._record, request, session, values)

    def _record(self, request: Request, session: Session, values: dict[str, str]) -> Response:
        visible = self.visible(session)
        customer_id = values.get("customer_id", "")
        customer = visible.customer(customer_id)  # NotFound before the form is judged
        if customer.sheet is None:
            raise NotFound(customer_id)
        outcome, errors = forms.outcome(values, visible.month.as_of,
                                        self.cfg.labels.horizon_months)
        if outcome is None:
            return self._customer(request, session, visible, customer_id, errors, values, 400)
        visible.record(customer_id, outcome, self.client(request))
        return RedirectResponse(_link("/customer", id=customer_id) + "#outcomes", 303)

    def export(self, request: Request) -> Response:
        session = self.session(request)
        if session is None:
            return RedirectResponse("/login", 303)
        visible = self.visible(session)
        managers = visible.managers(request.query_params.get("manager"))
        tables = {s: visible.sheet(s, managers).drop(columns="rank") for s in SHEETS}
        if len(managers) == 1:
            tables = {s: t.drop(columns="account_manager") for s, t in tables.items()}
            name = file_stems(managers)[managers[0]]
        else:
            name = "team"
        content = workbook_bytes(tables)
        with self.engine.begin() as con:
            audit_row(con, session.user.name, self.client(request), "export",
                      f"lists of {visible.month.as_of} of {', '.join(managers)[:1000]}")
        filename = f"lists-{visible.month.as_of}-{name}.xlsx"
        return Response(content, media_type=XLSX, headers={
            "Content-Disposition": f'attachment; filename="{filename}"'})

    def team(self, request: Request) -> Response:
        session = self.session(request)
        if session is None:
            return RedirectResponse("/login", 303)
        if session.user.role == "manager":
            raise NotFound("team")
        visible = self.visible(session)
        managers = visible.managers()
        rows = visible.progress(managers)
        total = {k: sum(r[k] for r in rows) for k in ("listed", "contacted", "saved", "lost")}
        return self.render(request, "team.html", session=session, month=visible.month,
                           rows=rows, total=total)

    def report(self, request: Request) -> Response:
        session = self.session(request)
        if session is None:
            return RedirectResponse("/login", 303)
        if session.user.role != "admin":
            raise NotFound("report")
        month = self.visible(session).month
        path = Path(self.cfg.web.report.replace("{as_of}", month.as_of.isoformat()))
        if not path.is_file():
            return self.render(request, "message.html", 404, session, title="No report",
                               message=f"No management report of {month.as_of} at {path}. "
                                       f"Write it with: klantwaarde report --as-of "
                                       f"{month.as_of} --out {path}")
        return HTMLResponse(path.read_text(encoding="utf-8"),
                            headers={"Content-Security-Policy": REPORT_CSP})

    # -- errors -------------------------------------------------------------------------------

    async def not_found(self, request: Request, exc: Exception) -> Response:
        return self.render(request, "message.html", 404, title="Not found",
                           message="There is no such page, or it is not yours to see.")

    async def unavailable(self, request: Request, exc: Exception) -> Response:
        return self.render(request, "message.html", 503, title="Not available",
                           message=str(exc))


def create_app(cfg: Config) -> Starlette:
    """The page over ``cfg``'s scores table and application database (made if missing).
    When the server starts, a thread loads the month, so that the first manager does not wait
    for it alone (a request that comes first waits for that load)."""
    page = Page(cfg, appdb.connect(cfg, connections=THREADS))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        threading.Thread(target=_preload, args=(page.months,), daemon=True,
                         name="month-preload").start()
        yield

    routes = [
        Route("/", page.home),
        Route("/login", page.get_login, methods=["GET"]),
        Route("/login", page.post_login, methods=["POST"]),
        Route("/logout", page.post_logout, methods=["POST"]),
        Route("/month", page.month_page),
        Route("/customer", page.customer_page),
        Route("/outcomes", page.post_outcome, methods=["POST"]),
        Route("/export.xlsx", page.export),
        Route("/team", page.team),
        Route("/report", page.report),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and exc.status_code != 404:
            return page.render(request, "message.html", exc.status_code, title="Error",
                               message=str(exc.detail))
        return await page.not_found(request, exc)

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={
        NotFound: page.not_found, HTTPException: http_error, InputError: page.unavailable})
    app.add_middleware(SecurityHeaders)
    app.state.page = page
    return app



def _preload(months: MonthCache) -> None:
    try:
        months.get()
    except Exception:  # noqa: BLE001 (the first request loads it again and answers the error)
        pass

