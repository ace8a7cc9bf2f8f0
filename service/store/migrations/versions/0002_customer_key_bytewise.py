"""Customer keys compare byte by byte on PostgreSQL, as they do on SQLite.

Keys are identifiers, not words: a language's collation orders them no better, makes
member pages come in a different order on the two databases, and costs every index
insert and sort a locale comparison (about a tenth of a bulk write's server time).
SQLite compares bytes already, so it has nothing to change.

On PostgreSQL this rebuilds the indexes on ``customer_key`` under an exclusive lock on
both tables: on a large history, migrate in a quiet hour (``python -m service migrate``)
before rolling out the replicas, rather than letting the first one do it at start-up. A
members cursor handed out before the change may repeat or skip a customer once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("latest_assignments", "assignment_history")


def _set_key_collation(collation: str | None) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.alter_column(table, "customer_key", type_=sa.String(64, collation=collation))


def upgrade() -> None:
    _set_key_collation("C")


def downgrade() -> None:
    _set_key_collation(None)
