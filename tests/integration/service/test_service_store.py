"""The store: one schema on SQLite and PostgreSQL, migrations that keep data, SQLite durability settings."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from grader.errors import UsageError
from grader.service import store as store_module
from grader.service.store import LATEST_VERSION, MIGRATIONS, Store, migrate, open_store


def test_a_new_store_is_at_the_latest_version(store: Store) -> None:
    """Does opening an empty database apply every migration, in order, once?"""
    assert store.version() == LATEST_VERSION
    with store.read() as conn:
        applied = (
            conn.execute(
                sa.select(store_module.schema_version.c.version).order_by(store_module.schema_version.c.version)
            )
            .scalars()
            .all()
        )
    assert applied == [m.version for m in MIGRATIONS]
    assert migrate(store) == []


def test_the_migrated_schema_is_the_schema_queries_use(store: Store) -> None:
    """Do the migration steps produce exactly the columns the current table definitions name?"""
    inspector = sa.inspect(store.engine)
    for table in (store_module.users, store_module.submissions):
        reflected = {column["name"] for column in inspector.get_columns(table.name)}
        assert reflected == {column.name for column in table.columns}, table.name


def _v1_submission(
    conn: sa.Connection, *, sid: str, user_id: int, result: dict[str, object] | None, status: str
) -> None:
    now = time.time()
    conn.execute(
        sa.text(
            "INSERT INTO submissions (id, user_id, exercise, filename, notebook, sha256, status, result, message, "
            "attempts, lease_owner, lease_expires_at, available_at, dispatched_at, created_at, updated_at) VALUES "
            "(:id, :user_id, 'ex', 'nb.ipynb', :nb, 'abc', :status, :result, '', 1, NULL, NULL, :now, NULL, :now, :now)"
        ),
        {
            "id": sid,
            "user_id": user_id,
            "nb": b"{}",
            "status": status,
            "result": json.dumps(result) if result is not None else None,
            "now": now,
        },
    )


def test_upgrading_an_old_store_keeps_its_data(store_url: str) -> None:
    """Does a version-1 store with users and graded submissions upgrade in place, data intact and backfilled?"""
    old = open_store(store_url, upgrade=False)
    try:
        assert [m.version for m in migrate(old, target=1)] == [1]
        with old.write() as conn:
            conn.execute(
                sa.text("INSERT INTO users (name, token_hash, role, created_at) VALUES ('alice', 'h1', 'learner', 0)")
            )
            user_id = conn.execute(sa.text("SELECT id FROM users WHERE name = 'alice'")).scalar_one()
            _v1_submission(
                conn,
                sid="graded-1",
                user_id=user_id,
                status="graded",
                result={"score": 3.0, "max_score": 5.0, "checks": []},
            )
            _v1_submission(conn, sid="queued-1", user_id=user_id, status="queued", result=None)
        assert old.version() == 1
    finally:
        old.dispose()

    upgraded = open_store(store_url)
    try:
        assert upgraded.version() == LATEST_VERSION
        with upgraded.read() as conn:
            rows = {r.id: r for r in conn.execute(sa.select(store_module.submissions))}
            names = conn.execute(sa.select(store_module.users.c.name)).scalars().all()
        assert names == ["alice"]
        assert set(rows) == {"graded-1", "queued-1"}
        assert (rows["graded-1"].score, rows["graded-1"].max_score) == (3.0, 5.0)
        assert rows["queued-1"].score is None
    finally:
        upgraded.dispose()


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
        with opened[0].read() as conn:
            versions = conn.execute(sa.select(store_module.schema_version.c.version)).scalars().all()
        assert sorted(versions) == [m.version for m in MIGRATIONS]
    finally:
        for s in opened:
            s.dispose()


def test_a_store_newer_than_the_grader_is_refused(store: Store) -> None:
    """Does an old grader refuse to touch a store migrated by a newer one, saying to upgrade?"""
    with store.write() as conn:
        conn.execute(
            sa.insert(store_module.schema_version).values(version=LATEST_VERSION + 1, name="future", applied_at=0)
        )
    with pytest.raises(UsageError, match="upgrade the grader"):
        migrate(store)


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
