"""Stores as the grader's hand-written migrations left them (before Alembic, issue 19), to upgrade in tests.

A frozen copy of the old ``migrate`` loop (one ``schema_version`` row per step applied, and its
refusal of newer stores); the steps themselves are the released code, kept verbatim in the first
Alembic revisions (their ``step`` functions), and the table's shape is revision 0006's.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from types import ModuleType

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from grader.errors import UsageError


def _step_module(name: str) -> ModuleType:
    return importlib.import_module(f"grader.service.migrations.versions.{name}")


schema_version = _step_module("r0006_alembic").schema_version

#: (version, name as recorded, the revision module holding its code), as the old MIGRATIONS listed them
_STEPS = (
    (1, "users and submissions", "r0001_tables"),
    (2, "score columns for the gradebook", "r0002_scores"),
    (3, "one active job per identical submission; claim and rate-limit indexes", "r0003_indexes"),
    (4, "GPU routing: submission device, routed queue, worker registry", "r0004_devices"),
    (5, "fair claims: learners' turns, claim times, running jobs per learner", "r0005_fairness"),
)
LEGACY_LATEST = _STEPS[-1][0]


def _step(module: str) -> Callable[[Connection], None]:
    step: Callable[[Connection], None] = _step_module(module).step
    return step


def legacy_migrate(conn: Connection, target: int = LEGACY_LATEST) -> list[int]:
    """The old ``migrate``: apply the steps after the store's ``schema_version`` up to ``target``."""
    if not sa.inspect(conn).has_table("schema_version"):
        schema_version.create(conn)
    current = int(conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0)
    if current > LEGACY_LATEST:
        raise UsageError(
            f"the store is at schema version {current}, newer than this grader knows ({LEGACY_LATEST}); "
            "upgrade the grader package"
        )
    applied = []
    for version, name, module in _STEPS:
        if current < version <= target:
            _step(module)(conn)
            conn.execute(sa.insert(schema_version).values(version=version, name=name, applied_at=time.time()))
            applied.append(version)
    return applied


def _insert(conn: Connection, table: str, row: dict[str, object]) -> None:
    names = ", ".join(row)
    conn.execute(sa.text(f"INSERT INTO {table} ({names}) VALUES ({', '.join(':' + n for n in row)})"), row)


def fill(conn: Connection, version: int) -> None:
    """Accounts, submissions with results and scores, workers: what a store at ``version`` could hold."""
    for n, (name, role) in enumerate((("alice", "learner"), ("bob", "learner"), ("ines", "instructor")), start=1):
        user: dict[str, object] = {"name": name, "token_hash": f"{n:064x}", "role": role, "created_at": 1000.0 + n}
        if version >= 5:
            user["last_claimed_at"] = 2000.0 + n if role == "learner" else None
        _insert(conn, "users", user)
    ids = {name: uid for name, uid in conn.execute(sa.text("SELECT name, id FROM users"))}
    rows = [
        ("graded-1", "alice", "graded", '{"score": 3.0, "max_score": 5.0, "checks": [{"id": "1.1"}]}'),
        ("queued-1", "alice", "queued", None),
        ("running-1", "bob", "running", None),
        ("broken-1", "bob", "graded", "not json: graded by a grader with a bug"),
        ("graded-2", "bob", "graded", '{"score": 5.0, "max_score": 5.0, "checks": []}'),
    ]
    for n, (sid, who, status, result) in enumerate(rows):
        sub: dict[str, object] = {
            "id": sid,
            "user_id": ids[who],
            "exercise": f"0{n % 2}-exercise",
            "filename": f"{sid}.ipynb",
            "notebook": bytes([0, 255, n]) + b'{"cells": []}',
            "sha256": f"{n:064x}",
            "status": status,
            "result": result,
            "message": "grading error, we will retry" if status == "queued" else "",
            "attempts": n,
            "lease_owner": "worker-a" if status == "running" else None,
            "lease_expires_at": 3000.0 + n if status == "running" else None,
            "available_at": 1500.0 + n,
            "dispatched_at": 1600.0 + n if n % 2 else None,
            "created_at": 1100.0 + n,
            "updated_at": 1200.0 + n,
        }
        if version >= 2 and sid == "graded-1":
            sub.update(score=3.0, max_score=5.0)
        if version >= 4:
            sub.update(device="gpu" if n == 2 else "cpu", routed_to="gpu" if n == 2 else None)
        if version >= 5:
            sub["claimed_at"] = 2500.0 + n if status == "running" else None
        _insert(conn, "submissions", sub)
    if version >= 4:
        device = '{"name": "NVIDIA H100", "capability": "9.0", "host": "gpu-1"}'
        _insert(
            conn,
            "workers",
            {"name": "gpu-1:42", "kind": "gpu", "device": device, "started_at": 1.0, "heartbeat_at": 2.0},
        )
        _insert(
            conn, "workers", {"name": "cpu-1:7", "kind": "cpu", "device": "{}", "started_at": 3.0, "heartbeat_at": 4.0}
        )


def snapshot(conn: Connection) -> dict[str, list[dict[str, object]]]:
    """Every row of the data tables, by primary key (bytes as bytes on both databases)."""
    keys = {"users": "id", "submissions": "id", "workers": "name"}
    found: dict[str, list[dict[str, object]]] = {}
    for table, key in keys.items():
        if sa.inspect(conn).has_table(table):
            rows = conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {key}")).mappings().all()
            found[table] = [{k: bytes(v) if isinstance(v, memoryview) else v for k, v in r.items()} for r in rows]
    return found


def schema_of(conn: Connection) -> dict[str, object]:
    """A store's schema as SQLAlchemy's inspector reads it: tables, columns, keys, indexes."""
    inspector = sa.inspect(conn)
    schema: dict[str, object] = {}
    for table in sorted(inspector.get_table_names()):
        schema[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default"))) for c in inspector.get_columns(table)
            ],
            "primary key": inspector.get_pk_constraint(table)["constrained_columns"],
            "foreign keys": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                for f in inspector.get_foreign_keys(table)
            ),
            "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
            "indexes": sorted(
                (
                    str(i["name"]),
                    tuple(map(str, i["column_names"])),
                    bool(i["unique"]),
                    str(sorted((k, str(v)) for k, v in (i.get("dialect_options") or {}).items())),
                )
                for i in inspector.get_indexes(table)
            ),
        }
    return schema
