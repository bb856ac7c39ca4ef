"""Users of the page: add, list and disable them (``klantwaarde users``), check a password.

A manager sees the customers of their own account-manager codes, a lead those of a team of
codes, an admin all. Passwords are stored as argon2id hashes (argon2-cffi's defaults).
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from klantwaarde.appdb import ROLES, now, sessions, user_managers, users
from klantwaarde.config import Config, did_you_mean
from klantwaarde.decisions import managers_of
from klantwaarde.errors import InputError
from klantwaarde.scoring.store import read_columns, scored_months

HASHER = PasswordHasher()
# verified against when the user does not exist, so that an unknown name takes as long as a
# wrong password
_NO_USER = HASHER.hash(secrets.token_urlsafe(16))
MIN_PASSWORD = 8


@dataclass(frozen=True)
class User:
    name: str
    role: str
    managers: tuple[str, ...]  # a manager's own codes, a lead's team; () for an admin
    disabled: bool = False


def known_managers(cfg: Config) -> list[str]:
    """The account managers of the newest scored month (customers without one under
    lists.yaml's ``unassigned``); an input error where no month is scored yet."""
    months = scored_months(cfg.scoring.parquet)
    if not months:
        raise InputError(f"scores: no scored month under {cfg.scoring.parquet}, so the manager "
                         "codes cannot be checked. Run klantwaarde score --source SRC --as-of "
                         "DATE first.")
    column = read_columns(cfg.scoring.parquet, months[-1], ("account_manager",)).column(0) \
        .to_pandas()
    return sorted(set(managers_of(column, cfg.lists.unassigned)), key=lambda m: (m.casefold(), m))


def add_user(engine: sa.Engine, name: str, role: str, managers: Iterable[str], password: str,
             known: Collection[str]) -> User:
    """Add a user; an input error for a bad or taken name, a bad role, a password shorter than
    MIN_PASSWORD, or manager codes that the role does not take or no scored customer has."""
    name = _checked_name(name)
    if role not in ROLES:
        raise InputError(f"--role {role!r}: the roles are {', '.join(ROLES)}."
                         + did_you_mean(role, ROLES))
    codes = tuple(dict.fromkeys(m.strip() for m in managers))
    if role == "admin" and codes:
        raise InputError("--manager: an admin sees every manager's customers; leave out "
                         "--manager, or use --role lead for a team.")
    if role != "admin" and not codes:
        raise InputError(f"--manager: a {role} needs at least one account-manager code "
                         "(repeat --manager for more), as in customers.account_manager.")
    unknown = [c for c in codes if c not in known]
    if unknown:
        some = ", ".join(list(known)[:8]) or "none"
        raise InputError(f"--manager {unknown[0]!r}: no customer of the newest scored month "
                         f"has this account manager (there are {len(known):,}, for example "
                         f"{some}).{did_you_mean(unknown[0], known)}")
    if not password:
        raise InputError("--password-stdin: the password is empty; pipe it in, e.g. "
                         "printf '%s' \"$PASSWORD\" | klantwaarde users add NAME ...")
    if len(password) < MIN_PASSWORD:
        raise InputError(f"--password-stdin: the password has {len(password)} characters; "
                         f"use at least {MIN_PASSWORD}.")
    with engine.begin() as con:
        if con.execute(sa.select(users.c.name).where(users.c.name == name)).first():
            raise InputError(f"users: {name!r} exists already; choose another name, or "
                             "klantwaarde users disable it first and add a new one.")
        con.execute(users.insert().values(name=name, role=role, disabled=False,
                                          password_hash=HASHER.hash(password),
                                          created_at=now()))
        if codes:
            con.execute(user_managers.insert(),
                        [{"user_name": name, "account_manager": c} for c in codes])
    return User(name, role, codes)


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 100 or any(unicodedata.category(c).startswith("C")
                                           for c in name):
        raise InputError(f"NAME {name!r}: a user name has 1 to 100 characters and no "
                         "control characters.")
    return name


def list_users(engine: sa.Engine) -> list[User]:
    """Every user, by name."""
    with engine.connect() as con:
        rows = con.execute(sa.select(users.c.name, users.c.role, users.c.disabled)
                           .order_by(users.c.name)).all()
        codes = con.execute(sa.select(user_managers.c.user_name,
                                      user_managers.c.account_manager)
                            .order_by(user_managers.c.account_manager)).all()
    by_user: dict[str, list[str]] = {}
    for user, code in codes:
        by_user.setdefault(user, []).append(code)
    return [User(n, r, tuple(by_user.get(n, ())), bool(d)) for n, r, d in rows]


def get_user(con: sa.Connection, name: str) -> tuple[User, str] | None:
    """A user and its password hash; None for an unknown name."""
    row = con.execute(sa.select(users).where(users.c.name == name)).first()
    if row is None:
        return None
    codes = con.execute(sa.select(user_managers.c.account_manager)
                        .where(user_managers.c.user_name == name)
                        .order_by(user_managers.c.account_manager)).scalars().all()
    return User(row.name, row.role, tuple(codes), bool(row.disabled)), row.password_hash


def disable_user(engine: sa.Engine, name: str) -> None:
    """Disable a user: no login from now on, and every open session of the user ends."""
    with engine.begin() as con:
        done = con.execute(users.update().where(users.c.name == name).values(disabled=True))
        if done.rowcount == 0:
            names = con.execute(sa.select(users.c.name).order_by(users.c.name)).scalars().all()
            raise InputError(f"users: no user {name!r} (users: {', '.join(names[:10]) or 'none'})."
                             + did_you_mean(name, names))
        con.execute(sessions.delete().where(sessions.c.user_name == name))


def password_matches(stored: str | None, password: str) -> bool:
    """Whether ``password`` fits the hash ``stored`` (None: no such user, checked against a
    dummy hash all the same)."""
    try:
        return HASHER.verify(stored or _NO_USER, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def new_password() -> str:
    """A random password of 16 URL-safe characters (the demo's users)."""
    return secrets.token_urlsafe(12)


def demo_users(engine: sa.Engine, managers: list[str], team: int = 3
               ) -> list[tuple[User, str]]:
    """The demo's users, each with a new random password: one manager per account manager
    (named by the code, in lower case), a lead over the first ``team`` managers and an
    admin."""
    made = []
    wanted = [(m.lower(), "manager", [m]) for m in managers]
    wanted += [("lead", "lead", managers[:team]), ("admin", "admin", [])]
    for name, role, codes in wanted:
        password = new_password()
        made.append((add_user(engine, name, role, codes, password, managers), password))
    return made
