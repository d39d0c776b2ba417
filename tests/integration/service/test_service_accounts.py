"""Accounts: tokens shown once and stored hashed, roles, and the `grader users` commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import REPO, make_settings

from grader.errors import UsageError
from grader.service import accounts
from grader.service.server import settings_env
from grader.service.store import Store, users


def test_a_token_authenticates_its_account_and_is_stored_only_as_a_hash(store: Store) -> None:
    """Does the store keep only the token's sha256, so a copy of the database signs nobody in?"""
    user, token = accounts.add_user(store, "alice")
    assert accounts.authenticate(store, token) == user
    with store.read() as conn:
        stored = conn.execute(sa.select(users.c.token_hash).where(users.c.name == "alice")).scalar_one()
    assert stored == accounts.hash_token(token) != token
    assert accounts.authenticate(store, stored) is None


@pytest.mark.parametrize("token", [None, "", "not-a-token", "x" * 43])
def test_a_wrong_or_missing_token_authenticates_nobody(store: Store, token: str | None) -> None:
    accounts.add_user(store, "alice")
    assert accounts.authenticate(store, token) is None


def test_tokens_are_unguessable_and_distinct(store: Store) -> None:
    """Are tokens long random strings, different for every account?"""
    tokens = [accounts.add_user(store, f"learner{i}")[1] for i in range(5)]
    assert len(set(tokens)) == 5
    assert all(len(token) >= 43 for token in tokens)  # 32 random bytes, url-safe base64


def test_resetting_a_token_stops_the_old_one(store: Store) -> None:
    _, old = accounts.add_user(store, "alice")
    new = accounts.reset_token(store, "alice")
    assert accounts.authenticate(store, old) is None
    assert accounts.authenticate(store, new) is not None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: accounts.add_user(s, "alice"), "already exists"),
        (lambda s: accounts.add_user(s, "bad name"), "not allowed"),
        (lambda s: accounts.add_user(s, "=cmd()"), "not allowed"),
        (lambda s: accounts.reset_token(s, "nobody"), "no user named 'nobody'"),
    ],
)
def test_account_mistakes_say_what_to_do(store: Store, call, message: str) -> None:
    accounts.add_user(store, "alice")
    with pytest.raises(UsageError, match=message):
        call(store)


def test_the_first_start_makes_one_instructor(store: Store) -> None:
    """Does ensure_instructor make an instructor on an empty store, and nothing once one exists?"""
    made = accounts.ensure_instructor(store)
    assert made is not None and made[0].is_instructor
    assert accounts.ensure_instructor(store) is None
    assert [u.name for u in accounts.list_users(store) if u.is_instructor] == [accounts.FIRST_INSTRUCTOR]


def _grader(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**settings_env(make_settings(tmp_path)), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "grader", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


def test_the_users_commands_print_a_token_once_and_list_without_it(tmp_path: Path) -> None:
    """Does `grader users add` print a working token, and `grader users list` show roles but never tokens?"""
    added = _grader(tmp_path, "users", "add", "ines", "--instructor")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    listed = _grader(tmp_path, "users", "list")
    assert listed.returncode == 0
    assert "ines" in listed.stdout and "instructor" in listed.stdout
    assert token not in listed.stdout
    from grader.service.store import open_store

    opened = open_store(make_settings(tmp_path))
    try:
        user = accounts.authenticate(opened, token)
        assert user is not None and user.is_instructor
    finally:
        opened.dispose()
    again = _grader(tmp_path, "users", "add", "ines")
    assert again.returncode == UsageError.exit_code
    assert "already exists" in again.stderr
