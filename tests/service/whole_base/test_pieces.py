"""Cutting files into pieces for Dask: the pieces read back to exactly the rows of the whole
file, with the same lines, whatever the file's quoting; a CSV is cut between records only."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import pytest

from service.whole_base.csv_records import header_record, record_blocks
from service.whole_base.pieces import Piece, input_files, plan_pieces
from service.whole_base.reading import read_chunks
from tests.service.whole_base.customer_files import synthetic_customers, write_parquet

QUOTED = (
    b'customer_key,"avg_credit_limit"\na,1\n"b\nstill b",2\n"c ""quoted""",3\n\n"d\n\nd",4\ne,5\n'
)


def test_blocks_end_between_records_even_when_a_quoted_cell_runs_over_lines() -> None:
    stream = io.BytesIO(QUOTED)
    header, header_lines = header_record(stream)
    assert (header, header_lines) == (b'customer_key,"avg_credit_limit"\n', 1)
    blocks = list(record_blocks(stream, 2))
    assert blocks == [
        (b'a,1\n"b\nstill b",2\n', 3),
        (b'"c ""quoted""",3\n\n', 2),
        (b'"d\n\nd",4\n', 3),
        (b"e,5\n", 1),
    ]


def test_a_header_over_several_lines_is_one_record() -> None:
    header, lines = header_record(io.BytesIO(b'"customer\nkey",x\n1,2\n'))
    assert (header, lines) == (b'"customer\nkey",x\n', 2)


def places_of(pieces: Sequence[Piece], chunk_size: int) -> list[str]:
    """Where each row the pieces hold is, as a refused row's location would say it."""
    found = []
    for piece in pieces:
        for chunk in read_chunks(piece, chunk_size):
            places = chunk.locations()
            assert 0 < len(places) <= chunk_size
            found += places
    return found


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_pieces_for_dask_read_back_as_the_whole_file_does(tmp_path: Path, kind: str) -> None:
    customers = synthetic_customers(2_345, seed=5)
    if kind == "parquet":
        path = write_parquet(customers, tmp_path / "base.parquet", row_group_size=70)
    else:
        path = tmp_path / "base.csv"
        customers.to_csv(path, index=False)
    whole = plan_pieces([path], chunk_size=100, split=False)
    cut = plan_pieces([path], chunk_size=100, split=True)
    assert len(whole) == 1 and len(cut) == 3  # pieces of about 10 chunks of 100 rows
    assert sum(piece.size for piece in cut) == whole[0].size
    places = places_of(cut, 100)
    assert places == places_of(whole, 100)
    unit = "row" if kind == "parquet" else "line"
    first = 1 if kind == "parquet" else 2
    assert places == [f"{unit} {number}" for number in range(first, first + 2_345)]


def test_a_folder_gives_its_csv_and_parquet_files_by_name_and_not_hidden_ones(
    tmp_path: Path,
) -> None:
    for name in ("b.parquet", "a.CSV", "_SUCCESS", ".c.csv", "_d.parquet", "notes.txt"):
        (tmp_path / name).write_text("")
    assert [path.name for path in input_files(tmp_path)] == ["a.CSV", "b.parquet"]


def test_an_answer_written_into_the_folder_is_not_taken_for_a_partition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("part-0.csv", "answer.csv"):
        (tmp_path / name).write_text("")
    monkeypatch.chdir(tmp_path.parent)
    found = input_files(Path(tmp_path.name), excluding=Path(tmp_path.name) / "answer.csv")
    assert found == [tmp_path / "part-0.csv"]  # absolute: workers may run elsewhere
