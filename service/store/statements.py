"""SQL text shared by the store's write paths (SQLAlchemy's, the grouped writes, COPY)."""

from __future__ import annotations

from service.store.assignments import ASSIGNMENT_FIELDS, COLUMNS

COLUMN_LIST = ", ".join(COLUMNS)
UPDATES = ", ".join(f"{name} = EXCLUDED.{name}" for name in ASSIGNMENT_FIELDS)
# A model's training snapshot, dated when the model was trained, never replaces what any
# model said of the customer since: the customer's features then are newer than the
# export's (and an import delayed by an outage lands after the model's own live answers).
REPLACES_LATEST = (
    "NOT (excluded.source = 'training' AND latest_assignments.assigned_at > excluded.assigned_at)"
)
