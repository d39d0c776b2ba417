"""The store's Alembic migrations: every earlier store upgrades in place, nothing lost, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import pg_schema_url
from legacy_store import LEGACY_LATEST, fill, legacy_migrate, schema_of, snapshot

from grader import cli
from grader.errors import UsageError
from grader.service import accounts, migrations
from grader.service.server import settings_env
from grader.service.store import Store, migrate, open_store
from grader.settings import load_settings

HEAD = "0009"
#: the Alembic revisions after the hand-written steps: 0006 (bookkeeping) … HEAD
ALEMBIC = [f"{v:04d}" for v in range(6, int(HEAD) + 1)]


@pytest.fixture
def head_schema(store_url: str, tmp_path: Path) -> Iterator[dict[str, object]]:
    """The schema of a fresh store at head, on the same kind of database as ``store_url``."""

    def read(url: str) -> dict[str, object]:
        fresh = open_store(url)
        try:
            with fresh.read() as conn:
                return schema_of(conn)
        finally:
            fresh.dispose()

    if store_url.startswith("sqlite"):
        yield read(f"sqlite:///{tmp_path / 'fresh.db'}")
    else:
        with pg_schema_url() as url:
            yield read(url)


def _legacy_store(url: str, version: int) -> Store:
    """A store the hand-written migrations made at ``version``, with data in it (not upgraded)."""
    old = open_store(url, upgrade=False)
    with old.write() as conn:
        assert legacy_migrate(conn, target=version) == list(range(1, version + 1))
        fill(conn, version)
    return old


@pytest.mark.parametrize("version", range(1, LEGACY_LATEST + 1))
def test_every_earlier_store_upgrades_in_place_keeping_its_data(
    store_url: str, head_schema: dict[str, object], version: int
) -> None:
    """Is a store at each hand-written schema version stamped, upgraded to head, its data and rows intact?"""
    store = _legacy_store(store_url, version)
    try:
        with store.read() as conn:
            before = snapshot(conn)
        state = store.schema()
        assert (state.current, state.legacy_version) == (None, version)
        expected = [f"{v:04d}" for v in range(version + 1, LEGACY_LATEST + 1)] + ALEMBIC
        assert [r.id for r in state.pending] == expected

        assert [r.id for r in migrate(store)] == expected
        with store.read() as conn:
            after = snapshot(conn)
            assert schema_of(conn) == head_schema
            bookkeeping = conn.execute(sa.text("SELECT version FROM schema_version ORDER BY version")).scalars().all()
        assert store.schema().current == HEAD and store.schema().pending == ()
        assert bookkeeping == [*range(1, version + 1), 6]
        assert {t: len(rows) for t, rows in after.items()} == {t: len(rows) for t, rows in before.items()} | (
            {} if version >= 4 else {"workers": 0}
        )
        for table, rows in before.items():
            for old_row, new_row in zip(rows, after[table], strict=True):
                assert {k: new_row[k] for k in old_row} == old_row, (table, old_row)
        scores = {r["id"]: (r["score"], r["max_score"]) for r in after["submissions"]}
        assert scores["graded-1"] == (3.0, 5.0)  # kept, or (from version 1) filled from the result
        assert scores["broken-1"] == (None, None)
        if version < 4:
            assert {r["device"] for r in after["submissions"]} == {"cpu"}
        assert sorted(u.name for u in accounts.list_users(store)) == ["alice", "bob", "ines"]  # the app reads it

        # upgrading twice is a no-op: nothing applied, nothing changed
        assert migrate(store) == []
        with store.read() as conn:
            assert snapshot(conn) == after
            assert schema_of(conn) == head_schema
        # and a grader from before Alembic now refuses the store instead of re-creating its tables
        with (
            pytest.raises(UsageError, match=r"schema version 6, newer than this grader knows \(5\)"),
            store.write() as conn,
        ):
            legacy_migrate(conn)
    finally:
        store.dispose()


def test_a_fresh_store_goes_straight_to_head(store: Store, head_schema: dict[str, object]) -> None:
    """Does an empty database get every revision, and the tombstone an old grader reads?"""
    assert store.schema().current == HEAD
    with store.read() as conn:
        assert conn.execute(sa.text("SELECT version FROM schema_version")).scalars().all() == [6]
        assert schema_of(conn) == head_schema
    assert migrate(store) == []


def test_a_store_upgraded_by_a_newer_grader_is_refused(store: Store) -> None:
    """Does a store at a revision this grader does not know stop it, saying to upgrade the grader?"""
    with store.write() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'f00dcafe'"))
    with pytest.raises(UsageError, match=r"migration 'f00dcafe'.*knows up to 0009.*upgrade the grader package"):
        open_store(store.engine.url.render_as_string(hide_password=False))
    with store.read() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == "f00dcafe"


def test_a_hand_written_store_from_the_future_is_refused(store_url: str) -> None:
    """Does a schema_version beyond 5 with no Alembic revision get the same clear refusal, and no change?"""
    old = _legacy_store(store_url, LEGACY_LATEST)
    try:
        with old.write() as conn:
            conn.execute(sa.text("INSERT INTO schema_version (version, name, applied_at) VALUES (9, 'future', 0)"))
        with pytest.raises(UsageError, match=r"schema version 9, newer than this grader knows \(5\).*upgrade"):
            migrate(old)
        with old.read() as conn:
            assert not sa.inspect(conn).has_table("alembic_version")
    finally:
        old.dispose()


BROKEN = '''"""a revision that fails half-way

Revision ID: 0099
Revises: HEAD
"""
import sqlalchemy as sa
from alembic import op

revision = "0099"
down_revision = "HEAD"


def upgrade() -> None:
    op.get_bind().execute(sa.text("ALTER TABLE users ADD COLUMN doomed FLOAT"))
    op.get_bind().execute(sa.text("CREATE TABLE doomed (id INTEGER PRIMARY KEY)"))
    raise RuntimeError("a revision that fails half-way")
'''


def test_a_failed_migration_leaves_the_store_as_it_was(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Does a revision failing after 0004 … HEAD ran roll all of them back, on SQLite as on PostgreSQL?"""
    scripts = tmp_path / "migrations"
    shutil.copytree(migrations.HERE, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "r0099_broken.py").write_text(BROKEN.replace("HEAD", HEAD))
    store = _legacy_store(store_url, 3)
    try:
        with store.read() as conn:
            before, schema_before = snapshot(conn), schema_of(conn)
        monkeypatch.setattr(migrations, "HERE", scripts)
        with pytest.raises(RuntimeError, match="fails half-way"):
            migrate(store)
        with store.read() as conn:
            assert schema_of(conn) == schema_before  # no alembic_version, workers, doomed; no new columns
            assert snapshot(conn) == before
            assert conn.execute(sa.text("SELECT MAX(version) FROM schema_version")).scalar() == 3
        monkeypatch.undo()
        assert [r.id for r in migrate(store)] == ["0004", "0005", *ALEMBIC]
    finally:
        store.dispose()


def test_an_upgrade_whose_connection_is_killed_is_rolled_back_and_tried_again(pg_url: str) -> None:
    """When PostgreSQL ends the connection half-way through an upgrade, is it rolled back and run again whole?"""
    store = _legacy_store(pg_url, 3)
    admin = sa.create_engine(sa.make_url(pg_url).difference_update_query(["options", "application_name"]))
    killed: list[int] = []

    def kill_once(conn: sa.Connection, _cursor: object, statement: str, *_args: object) -> None:
        if not killed and "alembic_version" in statement:  # mid-upgrade: the stamp is written, revisions not yet
            pid = conn.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
            with admin.begin() as kill:
                kill.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            killed.append(pid)

    try:
        with store.read() as conn:
            before = snapshot(conn)
        sa.event.listen(store.engine, "before_cursor_execute", kill_once)
        assert [r.id for r in migrate(store)] == ["0004", "0005", *ALEMBIC]
        sa.event.remove(store.engine, "before_cursor_execute", kill_once)
        assert len(killed) == 1
        assert store.schema().current == HEAD
        with store.read() as conn:
            after = snapshot(conn)
        for table, rows in before.items():
            assert [{k: new[k] for k in old} for old, new in zip(rows, after[table], strict=True)] == rows, table
    finally:
        admin.dispose()
        store.dispose()


def test_grader_db_current_and_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Do `grader db current` and `grader db upgrade` say where an old store stands and what they applied?"""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _legacy_store(url, 2).dispose()
    settings = load_settings(None, database_url=url, data_dir=tmp_path / "service")
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)

    assert cli.main(["db", "current"]) == 0
    out = capsys.readouterr().out
    assert f"the store at {url}: no revision (hand-written schema version 2, made before Alembic)" in out
    assert f"{3 + len(ALEMBIC)} to apply by `grader db upgrade`" in out and "  0003 one active job" in out

    assert cli.main(["db", "upgrade"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"upgraded the store at {url} from schema version 2 to {HEAD}:"
    assert [line.split()[0] for line in lines[1:]] == ["0003", "0004", "0005", *ALEMBIC]

    assert cli.main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out == f"the store at {url} is at {HEAD}, the latest: nothing to do\n"
    assert cli.main(["db", "current"]) == 0
    assert capsys.readouterr().out == f"the store at {url}: {HEAD}; this grader's latest is {HEAD}\n"
