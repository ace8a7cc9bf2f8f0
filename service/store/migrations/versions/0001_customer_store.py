"""Customer store: latest assignments, assignment history, imported snapshots.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

FEATURES = (
    "avg_credit_limit",
    "total_credit_cards",
    "total_visits_bank",
    "total_visits_online",
    "total_calls_made",
)


def _assignment_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("segment_id", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        *(sa.Column(feature, sa.Float, nullable=False) for feature in FEATURES),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("atypical", sa.Boolean, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "latest_assignments",
        sa.Column("customer_key", sa.String(64), primary_key=True),
        *_assignment_columns(),
    )
    op.create_index(
        "ix_latest_assignments_segment_key", "latest_assignments", ["segment_id", "customer_key"]
    )
    op.create_table(
        "assignment_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("customer_key", sa.String(64), nullable=False),
        *_assignment_columns(),
    )
    op.create_index("ix_assignment_history_key_id", "assignment_history", ["customer_key", "id"])
    op.create_table(
        "snapshot_imports",
        sa.Column("model_version", sa.String(128), primary_key=True),
        sa.Column("n_rows", sa.Integer, nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("snapshot_imports")
    op.drop_index("ix_assignment_history_key_id", "assignment_history")
    op.drop_table("assignment_history")
    op.drop_index("ix_latest_assignments_segment_key", "latest_assignments")
    op.drop_table("latest_assignments")
