"""Sessions, logins and their throttle, CSRF tokens and the audit trail.

- A session is a random token in an HttpOnly, SameSite=Lax cookie; the database keeps only its
  SHA-256, so a copy of the database opens no session. Every login makes a new token (the one
  the browser brought is dropped: no session fixation). A session ends after
  ``session_hours``, after ``idle_minutes`` without a request, at logout, or when its user is
  disabled.
- Every session has its own CSRF token, a hidden field of every form; a POST without it, or
  with another, is refused. The login form, before any session, carries a random value that
  must equal a cookie of its own (a double-submit token).
- After ``login_failures`` failed logins of a name, or ``client_failures`` from one address,
  within ``failure_window_minutes``, logins are refused until the window has passed, the right
  password included.
- Logins (also failed and throttled ones), logouts, exports and outcomes are written to the
  audit table, which no route changes and the database refuses to change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from klantwaarde.appdb import audit, login_failures, now, sessions, user_managers, users
from klantwaarde.config import WebConfig
from klantwaarde.web.users import User, get_user, password_matches

COOKIE = "klantwaarde_session"
LOGIN_COOKIE = "klantwaarde_login"
TOUCH_EVERY = dt.timedelta(seconds=60)  # last_seen is written at most this often
# a session with its enabled user and the user's managers, one row per manager: built once,
# as every request asks it
_LIVE = (sa.select(sessions.c.csrf, sessions.c.last_seen, sessions.c.expires_at, users.c.name,
                   users.c.role, user_managers.c.account_manager)
         .join(users, users.c.name == sessions.c.user_name)
         .outerjoin(user_managers, user_managers.c.user_name == users.c.name)
         .where(sessions.c.token_hash == sa.bindparam("key"), users.c.disabled.is_(False))
         .order_by(user_managers.c.account_manager))


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str
    token_hash: str


class LoginRefused(Exception):
    """A login that did not succeed; ``status`` 401 (wrong) or 429 (throttled)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same(given: str | None, expected: str) -> bool:
    """Whether a submitted token equals the expected one (constant time)."""
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


def write_audit(con: sa.Connection, user: str | None, client: str, action: str,
                detail: str = "") -> None:
    con.execute(audit.insert().values(at=now(), user_name=user, client=client[:100],
                                      action=action, detail=detail))


class Sessions:
    """Logins and sessions on the application database."""

    def __init__(self, engine: sa.Engine, cfg: WebConfig) -> None:
        self.engine = engine
        self.cfg = cfg

    def login(self, name: str, password: str, client: str, old_token: str | None
              ) -> tuple[str, Session]:
        """A new session for ``name``, or LoginRefused; the session of ``old_token`` ends."""
        name = name.strip()[:200]
        at = now()
        since = at - dt.timedelta(minutes=self.cfg.failure_window_minutes)
        with self.engine.connect() as con:
            failed = _count(con, login_failures.c.user_name == name, since)
            from_client = _count(con, login_failures.c.client == client, since)
            found = get_user(con, name)
        if failed >= self.cfg.login_failures or from_client >= self.cfg.client_failures:
            with self.engine.begin() as con:
                write_audit(con, name, client, "login throttled")
            minutes = round(self.cfg.failure_window_minutes)
            raise LoginRefused(f"Too many failed logins; try again in {minutes} minutes.", 429)
        user, stored = found if found else (None, None)
        matches = password_matches(stored, password)
        if not matches or user is None or user.disabled:
            with self.engine.begin() as con:
                con.execute(login_failures.insert().values(user_name=name, client=client,
                                                           at=at))
                write_audit(con, name, client, "login failed",
                            "disabled user" if matches and user is not None else "")
            raise LoginRefused("Wrong name or password.", 401)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self.engine.begin() as con:
            if old_token:
                con.execute(sessions.delete().where(sessions.c.token_hash
                                                    == token_hash(old_token)))
            con.execute(sessions.insert().values(
                token_hash=token_hash(token), user_name=user.name, csrf=csrf, created_at=at,
                last_seen=at, expires_at=at + dt.timedelta(hours=self.cfg.session_hours)))
            con.execute(login_failures.delete().where(login_failures.c.user_name == name))
            con.execute(sessions.delete().where(sessions.c.expires_at < at))
            write_audit(con, user.name, client, "login")
        return token, Session(user, csrf, token_hash(token))

    def current(self, token: str | None) -> Session | None:
        """The live session of a cookie's token, None for none, an ended one or a disabled
        user."""
        if not token:
            return None
        key = token_hash(token)
        at = now()
        with self.engine.connect() as con:
            rows = con.execute(_LIVE, {"key": key}).all()
        idle = dt.timedelta(minutes=self.cfg.idle_minutes)
        if not rows or rows[0].expires_at <= at or rows[0].last_seen + idle <= at:
            return None
        row = rows[0]
        if at - row.last_seen >= TOUCH_EVERY:
            with self.engine.begin() as con:
                con.execute(sessions.update().where(sessions.c.token_hash == key)
                            .values(last_seen=at))
        managers = tuple(r.account_manager for r in rows if r.account_manager is not None)
        return Session(User(row.name, row.role, managers), row.csrf, key)

    def logout(self, session: Session, client: str) -> None:
        with self.engine.begin() as con:
            con.execute(sessions.delete().where(sessions.c.token_hash == session.token_hash))
            write_audit(con, session.user.name, client, "logout")


def _count(con: sa.Connection, which: sa.ColumnElement[bool], since: dt.datetime) -> int:
    return con.execute(sa.select(sa.func.count()).select_from(login_failures)
                       .where(which, login_failures.c.at >= since)).scalar_one()
