"""Scoring the pieces one after the other in this process, each chunk written as it comes:
memory holds one chunk and its answer, whatever the size of the base."""

from __future__ import annotations

from collections.abc import Sequence

from service.customer_records import CustomerRecords
from service.models.active_model import ActiveModel
from service.whole_base.chunk_scoring import score_piece
from service.whole_base.output import OutputFile
from service.whole_base.pieces import Piece
from service.whole_base.progress import FileProgress
from service.whole_base.tally import Tally


def score_in_process(
    model: ActiveModel,
    pieces: Sequence[Piece],
    output: OutputFile,
    progress: FileProgress,
    *,
    chunk_size: int,
    records: CustomerRecords | None,
) -> Tally:
    """Score every piece in order into ``output``; with ``records``, keyed rows are kept."""
    tally = Tally()
    for piece in pieces:
        for chunk in score_piece(model, piece, chunk_size=chunk_size, records=records):
            output.write(chunk.table)
            tally.add(chunk)
            progress.advance(piece.path, chunk.consumed)
    return tally
