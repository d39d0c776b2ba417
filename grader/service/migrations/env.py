"""Alembic's environment: run the revisions on the connection :func:`grader.service.migrations.upgrade` passes.

The grader runs its migrations itself (``open_store``, ``grader db upgrade``), inside its own write
transaction, so there is no ``alembic.ini`` and no engine here.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by someone running the `alembic` command by hand
    raise RuntimeError("the grader's store is migrated by `grader db upgrade` (or on start), not by `alembic`")
context.configure(connection=connection)
with context.begin_transaction():
    context.run_migrations()
