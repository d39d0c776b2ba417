"""Accounts: learners and instructors, each identified by a token the instructor hands out.

A token is ``secrets.token_urlsafe(32)`` (256 random bits). It is shown once, when the
account is made (``grader users add NAME``) or its token replaced (``grader users reset NAME``),
and only its sha256 is stored, so a copy of the database does not let anyone sign in.

Requests authenticate with ``Authorization: Bearer <token>``; the web pages use the same
token kept in an HttpOnly, SameSite=Strict cookie set by the sign-in form.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from grader.errors import UsageError
from grader.service.store import Store, users

Role = Literal["learner", "instructor"]

#: names appear in URLs-free places only (gradebook rows, CSV), but keep them plain anyway
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
#: the account ``grader service`` makes on its first start
FIRST_INSTRUCTOR = "instructor"


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role
    created_at: float

    @property
    def is_instructor(self) -> bool:
        return self.role == "instructor"


def hash_token(token: str) -> str:
    """What the store keeps of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _user(row: sa.Row) -> User:
    return User(id=row.id, name=row.name, role=row.role, created_at=row.created_at)


def _check_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise UsageError(
            f"user name {name!r} is not allowed: use 1-64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit (e.g. ada.lovelace)"
        )


def add_user(store: Store, name: str, *, instructor: bool = False) -> tuple[User, str]:
    """Make an account; return it with its token (the only time the token is available)."""
    _check_name(name)
    token = new_token()
    role: Role = "instructor" if instructor else "learner"

    def work(conn: Connection) -> User:
        row = conn.execute(
            sa.insert(users)
            .values(name=name, token_hash=hash_token(token), role=role, created_at=time.time())
            .returning(*users.c)
        ).one()
        return _user(row)

    try:
        return store.run(work), token
    except IntegrityError:
        raise UsageError(
            f"user {name!r} already exists; choose another name, or `grader users reset {name}` for a new token"
        ) from None


def reset_token(store: Store, name: str) -> str:
    """Replace a user's token (the old one stops working at once); return the new one."""
    token = new_token()

    def work(conn: Connection) -> int:
        return conn.execute(sa.update(users).where(users.c.name == name).values(token_hash=hash_token(token))).rowcount

    if store.run(work) == 0:
        raise UsageError(f"no user named {name!r}; `grader users list` shows who exists")
    return token


def list_users(store: Store) -> list[User]:
    """Every account, instructors first, then by name."""
    rows = store.run(lambda conn: conn.execute(sa.select(users)).all(), write=False)
    return sorted((_user(r) for r in rows), key=lambda u: (u.role != "instructor", u.name))


def authenticate(store: Store, token: str | None) -> User | None:
    """The account a token belongs to, or None."""
    if not token:
        return None
    digest = hash_token(token)
    row = store.run(
        lambda conn: conn.execute(sa.select(users).where(users.c.token_hash == digest)).first(), write=False
    )
    return _user(row) if row is not None else None


def ensure_instructor(store: Store) -> tuple[User, str] | None:
    """On a store without any instructor, make ``instructor`` and return it with its token."""
    existing = store.run(
        lambda conn: conn.execute(sa.select(users.c.id).where(users.c.role == "instructor").limit(1)).first(),
        write=False,
    )
    if existing is not None:
        return None
    try:
        return add_user(store, FIRST_INSTRUCTOR, instructor=True)
    except UsageError:  # another process made it first, or a learner took the name
        return None


def render_users(found: list[User]) -> str:
    """The table ``grader users list`` prints (tokens are never shown: they are not stored)."""
    if not found:
        return "no users yet: `grader users add NAME` makes one"
    width = max(len(u.name) for u in found)
    lines = [f"{'name'.ljust(width)}  role        created (UTC)"]
    for u in found:
        created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(u.created_at))
        lines.append(f"{u.name.ljust(width)}  {u.role.ljust(10)}  {created}")
    return "\n".join(lines)
