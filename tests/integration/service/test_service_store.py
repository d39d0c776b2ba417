"""The store: one schema on SQLite and PostgreSQL, SQLite durability settings (migrations: test_migrations.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from grader.errors import UsageError
from grader.service import store as store_module
from grader.service.store import Store, open_store


def test_the_migrated_schema_is_the_schema_queries_use(store: Store) -> None:
    """Do the migration steps produce exactly the columns the current table definitions name?"""
    inspector = sa.inspect(store.engine)
    for table in (store_module.users, store_module.submissions, store_module.workers):
        reflected = {column["name"] for column in inspector.get_columns(table.name)}
        assert reflected == {column.name for column in table.columns}, table.name


def test_many_processes_opening_one_store_migrate_it_once(store_url: str) -> None:
    """Can several workers start at the same moment on an empty store without a migration failing?"""
    errors: list[BaseException] = []
    opened: list[Store] = []

    def start() -> None:
        try:
            opened.append(open_store(store_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert {s.schema().current for s in opened} == {opened[0].schema().head}
        with opened[0].read() as conn:  # each revision ran once: its tombstone row is there once
            assert conn.execute(sa.text("SELECT version FROM schema_version")).scalars().all() == [6]
    finally:
        for s in opened:
            s.dispose()


@pytest.mark.parametrize(
    ("pragma", "expected"),
    [
        ("journal_mode", "wal"),
        ("synchronous", 2),  # FULL
        ("foreign_keys", 1),
    ],
)
def test_sqlite_is_durable_and_shareable(tmp_path: Path, pragma: str, expected: object) -> None:
    """Is the embedded SQLite store in WAL mode with synchronous=FULL on every connection?"""
    opened = open_store(f"sqlite:///{tmp_path / 'g.db'}")
    try:
        with opened.read() as conn:
            assert conn.exec_driver_sql(f"PRAGMA {pragma}").scalar() == expected
    finally:
        opened.dispose()


def test_sqlite_waits_for_a_busy_writer_instead_of_failing(tmp_path: Path) -> None:
    """Does a second writer wait for the first one's transaction rather than raise 'database is locked'?"""
    url = f"sqlite:///{tmp_path / 'g.db'}"
    first, second = open_store(url), open_store(url)
    try:
        finished = threading.Event()

        def write_later() -> None:
            with second.write() as conn:
                conn.execute(
                    sa.text("INSERT INTO users (name, token_hash, role, created_at) VALUES ('b', 'hb', 'learner', 0)")
                )
            finished.set()

        with first.write() as conn:
            conn.execute(
                sa.text("INSERT INTO users (name, token_hash, role, created_at) VALUES ('a', 'ha', 'learner', 0)")
            )
            thread = threading.Thread(target=write_later)
            thread.start()
            assert not finished.wait(0.3)  # blocked behind BEGIN IMMEDIATE, not failed
        thread.join(10)
        assert finished.is_set()
        with first.read() as conn:
            assert sorted(conn.execute(sa.text("SELECT name FROM users")).scalars()) == ["a", "b"]
    finally:
        first.dispose()
        second.dispose()


def test_an_unknown_database_kind_is_refused_with_the_supported_ones() -> None:
    """Does a mistyped GRADER_DATABASE_URL get a message naming what is supported?"""
    with pytest.raises(UsageError, match=r"sqlite:/// and postgresql\+psycopg://"):
        open_store("mysql://root@127.0.0.1/test")


def test_the_default_store_lives_outside_the_build_dir(tmp_path: Path) -> None:
    """Does `make clean` (rm -rf _build) leave the default store alone?"""
    from conftest import REPO

    from grader.settings import load_settings

    settings = load_settings(REPO)
    url = store_module.database_url(settings)
    assert url.startswith("sqlite:///")
    assert not Path(url.removeprefix("sqlite:///")).resolve().is_relative_to(settings.build_dir.resolve())
