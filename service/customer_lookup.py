"""Existing customers' assignments from the active model's training snapshot."""

from __future__ import annotations

from typing import Any

from service.active_model import ActiveModel
from service.errors import CustomerNotFound
from service.snapshot import TrainingSnapshot


def training_assignment(
    model: ActiveModel, snapshot: TrainingSnapshot, customer_key: str
) -> dict[str, Any]:
    """The customer's assignment in training (their last record when the key repeats)."""
    row = snapshot.row_by_key.get(customer_key.strip())
    if row is None:
        raise CustomerNotFound(
            f"customer_key={customer_key!r} is not among the {len(snapshot)} customers "
            f"of model {model.version}"
        )
    record = model.assign(snapshot.features[row : row + 1], [snapshot.keys[row]])[0]
    return {**record, "source": "training", "assigned_at": model.manifest["created_at"]}
