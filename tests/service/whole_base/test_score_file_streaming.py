"""`score_file` streams: no chunk handed to scoring is larger than the chunk size, the answer
is written chunk by chunk into a hidden file that takes its name only at the end, and the
memory a run allocates does not grow with the number of customers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import service.whole_base.chunk_scoring as chunk_scoring
from service.customer_records import CustomerRecords
from service.models.active_model import ActiveModel
from service.score_file import main
from service.scoring.batch_scoring import BatchAnswer, score_batch
from service.scoring.customer_input import CustomerBatch
from service.whole_base.output import OutputFile
from tests.service.whole_base.customer_files import read_answer, synthetic_customers, write_parquet

ROOT = Path(__file__).resolve().parents[3]


def customer_file(folder: Path, rows: int, kind: str) -> Path:
    customers = synthetic_customers(rows, seed=rows)
    if kind == "parquet":
        return write_parquet(customers, folder / f"{rows}.parquet", row_group_size=rows)
    path = folder / f"{rows}.csv"
    customers.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_chunks_never_exceed_the_chunk_size_and_the_answer_is_written_as_they_come(
    models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    # One row group of 900 rows: Parquet too must be read in batches, not whole.
    data = customer_file(tmp_path, 900, kind)
    out = tmp_path / "answer" / "segments.parquet"
    scored_sizes: list[int] = []
    writes: list[dict[str, Any]] = []

    def spied_scoring(
        model: ActiveModel, batch: CustomerBatch, records: CustomerRecords | None, **options: Any
    ) -> BatchAnswer:
        scored_sizes.append(batch.size)
        return score_batch(model, batch, records, **options)

    def spied_write(output: OutputFile, table: Any) -> None:
        hidden = [path.name for path in out.parent.iterdir() if path.name.endswith(".partial")]
        writes.append({"rows": table.num_rows, "out_exists": out.exists(), "hidden": hidden})
        original_write(output, table)

    original_write = OutputFile.write
    monkeypatch.setattr(chunk_scoring, "score_batch", spied_scoring)
    monkeypatch.setattr(OutputFile, "write", spied_write)
    assert main([str(data), "--out", str(out), "--models-dir", str(models_dir),
                 "--chunk-size", "200"]) == 0  # fmt: skip
    assert scored_sizes == [200, 200, 200, 200, 100]
    assert [write["rows"] for write in writes] == scored_sizes
    assert not any(write["out_exists"] for write in writes)
    hidden = {name for write in writes for name in write["hidden"]}
    assert len(hidden) == 1 and hidden.pop().startswith(f".{out.name}.")
    assert len(read_answer(out)) == 900
    assert [path.name for path in out.parent.iterdir()] == [out.name]


MEASURED_RUNS = """
import json, sys, tracemalloc
from service import score_file
from service.models.model_loading import load_model

def load_then_measure(*args, **options):
    loaded = load_model(*args, **options)
    tracemalloc.reset_peak()  # what the model and the imports hold stays counted
    return loaded

score_file.load_model = load_then_measure
peaks = []
for arguments in json.loads(sys.argv[1]):
    tracemalloc.start()
    assert score_file.main(arguments) == 0
    peaks.append(tracemalloc.get_traced_memory()[1])
    tracemalloc.stop()
print(json.dumps(peaks))
"""
"""Runs the command several times in a fresh Python, printing the most memory Python held
at once (numpy's arrays included) in each run once its model was loaded. A process of its
own: no other thread (a test's Dask scheduler, say) allocates meanwhile."""


def peaks_allocated(runs: list[list[str]]) -> list[int]:
    completed = subprocess.run(
        [sys.executable, "-c", MEASURED_RUNS, json.dumps(runs)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    peaks: list[int] = json.loads(completed.stdout.splitlines()[-1])
    return peaks


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_the_memory_a_run_takes_does_not_grow_with_the_number_of_customers(
    models_dir: Path, tmp_path: Path, kind: str
) -> None:
    small, large = customer_file(tmp_path, 2_000, kind), customer_file(tmp_path, 8_000, kind)

    def run(data: Path) -> list[str]:
        out = tmp_path / f"{data.stem}-answer.csv"
        return [str(data), "--out", str(out), "--models-dir", str(models_dir), "--chunk-size",
                "250"]  # fmt: skip

    # The first run pays for imports and one-time caches: not compared.
    _, *peaks = peaks_allocated([run(small), run(small), run(large)])
    # Four times the customers; a run holding them all would take about four times more.
    assert peaks[1] < 1.5 * peaks[0], f"peaks: {peaks[0]:,} B (2,000 rows), {peaks[1]:,} B (8,000)"
    assert len(read_answer(tmp_path / "8000-answer.csv")) == 8_000
