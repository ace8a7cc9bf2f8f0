"""Index the latest assignments by model version, then segment, then customer key.

Once the service counts and lists only what the active model said (live sizes, member
exports), every such query names a version; and after a switch of model, finding the
customers a previous version assigned (to rescore them) must not read the whole table.
This index serves all three, and replaces the one by segment and key, whose queries now
all carry a version too.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_latest_assignments_version_segment_key",
        "latest_assignments",
        ["model_version", "segment_id", "customer_key"],
    )
    op.drop_index("ix_latest_assignments_segment_key", "latest_assignments")


def downgrade() -> None:
    op.create_index(
        "ix_latest_assignments_segment_key", "latest_assignments", ["segment_id", "customer_key"]
    )
    op.drop_index("ix_latest_assignments_version_segment_key", "latest_assignments")
