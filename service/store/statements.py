"""SQL text shared by the store's write paths (SQLAlchemy's, the grouped writes, COPY)."""

from __future__ import annotations

from service.store.assignments import ASSIGNMENT_FIELDS, COLUMNS

COLUMN_LIST = ", ".join(COLUMNS)
UPDATES = ", ".join(f"{name} = EXCLUDED.{name}" for name in ASSIGNMENT_FIELDS)
# A model's training snapshot never replaces what that same model said of the customer
# since (an import delayed by an outage lands after live answers).
REPLACES_LATEST = (
    "NOT (excluded.source = 'training' "
    "AND latest_assignments.model_version = excluded.model_version)"
)
