"""Table definitions of the customer store (the migrations create exactly these)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)

from segmentation.artifact import VERSION_NAME_MAX_LENGTH
from segmentation.features import CUSTOMER_KEY_MAX_LENGTH, FEATURES

metadata = MetaData()

KEY_LENGTH = CUSTOMER_KEY_MAX_LENGTH
ID_LENGTH = VERSION_NAME_MAX_LENGTH
"""Version names and segment ids (slugs, far shorter) share the column length."""

CUSTOMER_KEY_TYPE = String(KEY_LENGTH).with_variant(String(KEY_LENGTH, collation="C"), "postgresql")
"""Compared byte by byte on both databases (SQLite's default; see migration 0002)."""


def _assignment_columns() -> list[Column[object]]:
    return [
        Column("segment_id", String(ID_LENGTH), nullable=False),
        Column("model_version", String(ID_LENGTH), nullable=False),
        *(Column(feature, Float, nullable=False) for feature in FEATURES),
        Column("confidence", Float, nullable=False),
        Column("atypical", Boolean, nullable=False),
        Column("source", String(16), nullable=False),
        Column("assigned_at", DateTime(timezone=True), nullable=False),
    ]


latest_assignments = Table(
    "latest_assignments",
    metadata,
    Column("customer_key", CUSTOMER_KEY_TYPE, primary_key=True),
    *_assignment_columns(),
    # What one model said, by segment and key: live sizes, member pages and rescoring.
    Index(
        "ix_latest_assignments_version_segment_key", "model_version", "segment_id", "customer_key"
    ),
    # Room for a customer scored again by the same model to be rewritten in place (0003).
    postgresql_with={"fillfactor": 50},
)
"""One row per customer: the most recent assignment."""

assignment_history = Table(
    "assignment_history",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("customer_key", CUSTOMER_KEY_TYPE, nullable=False),
    *_assignment_columns(),
    Index("ix_assignment_history_key_id", "customer_key", "id"),
)
"""Every assignment ever made, never updated."""

snapshot_imports = Table(
    "snapshot_imports",
    metadata,
    Column("model_version", String(ID_LENGTH), primary_key=True),
    Column("n_rows", Integer, nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
)
"""Training snapshots already imported: the primary key makes an import happen once."""
