"""What a run gave, counted as the answer is written: customers, segments, refusals.

Only counts and the first few refusals are kept, so the tally stays small whatever the
size of the base; every refusal is in the answer file, with its file and line.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow.compute as compute

from service.whole_base.chunk_scoring import ScoredChunk

REFUSALS_KEPT = 10


@dataclass
class Tally:
    """Counts over every chunk written so far."""

    customers: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    refused: int = 0
    first_refusals: list[str] = field(default_factory=list)
    """``"<file> line N: <what is wrong>"`` for the first refused rows."""
    unrecorded: int = 0

    @property
    def scored(self) -> int:
        return self.customers - self.refused

    def add(self, chunk: ScoredChunk) -> None:
        """Count a chunk's answer rows."""
        table = chunk.table
        self.customers += table.num_rows
        self.unrecorded += chunk.unrecorded
        for entry in compute.value_counts(table["segment_id"]).to_pylist():
            if entry["values"] is not None:
                self.counts[entry["values"]] += entry["counts"]
        refused = table.filter(compute.is_valid(table["error"]))
        self.refused += refused.num_rows
        room = REFUSALS_KEPT - len(self.first_refusals)
        if room > 0 and refused.num_rows:
            shown = refused.slice(0, room)
            self.first_refusals += [
                f"{location}: {error}"
                for location, error in zip(
                    shown["location"].to_pylist(), shown["error"].to_pylist(), strict=True
                )
            ]
