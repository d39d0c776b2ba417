"""The store's Alembic revisions, one module each (a package, so they ship in the wheel as modules).

``r0001`` … ``r0005`` are the hand-written migrations 1 … 5, their code as released (``step``);
a store those made (``schema_version`` 1 … 5) is stamped at the matching revision and upgraded
from there. Never edit a released revision: add the next one (docs/SERVICE.md, "The store").

Imports: alembic's ``op`` and SQLAlchemy only (a revision is frozen: never the store's current tables).
"""
