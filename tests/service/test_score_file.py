"""`python -m service.score_file INPUT --out OUTPUT [--store]`: whole files scored, the answer
written whole, refused rows named by file and line, the exit status saying what happened."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as arrow
import pyarrow.parquet as parquet
import pytest
from sqlalchemy import text

from service.score_file import OUTPUT_COLUMNS, main
from service.store.customer_store import CustomerStore
from training.job import TrainingResult

ROOT = Path(__file__).resolve().parents[2]
HEADER = (
    "Customer Key,Avg_Credit_Limit,Total_Credit_Cards,Total_visits_bank,"
    "Total_visits_online,Total_calls_made"
)


def history_sources(database_url: str) -> dict[str, int]:
    store = CustomerStore(database_url)
    with store.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT source, COUNT(*) FROM assignment_history GROUP BY source")
        )
        counts = {source: int(count) for source, count in rows}
    store.dispose()
    return counts


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_the_bank_export_is_scored_into_a_csv_in_chunks_as_training_assigned_it(
    models_dir: Path,
    bank_export: Path,
    tmp_path: Path,
    trained: TrainingResult,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "segments.csv"
    database_url = f"sqlite:///{tmp_path / 's.db'}"
    code = main(
        [str(bank_export), "--out", str(out), "--models-dir", str(models_dir),
         "--chunk-size", "100", "--database-url", database_url]
    )  # fmt: skip
    summary = capsys.readouterr().out
    assert code == 0
    assert "660 customers, 660 scored, 0 refused" in summary and "386" in summary
    rows = read_csv(out)
    assert list(rows[0]) == list(OUTPUT_COLUMNS)
    trained_rows = list(csv.DictReader((trained.path / "assignments.csv").open()))
    assert [row["segment_id"] for row in rows] == [row["segment_id"] for row in trained_rows]
    assert {row["model_version"] for row in rows} == {trained.version}
    assert not (tmp_path / "s.db").exists()  # nothing recorded without --store


def test_parquet_in_and_out_and_a_folder_of_files(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.csv").write_text(f"{HEADER}\nk1,50000,3,0,10,9\n")
    table = arrow.table(
        {
            "customer_key": ["k2", "k3"],
            "avg_credit_limit": [100000, 12000],
            "total_credit_cards": [2, 3],
            "total_visits_bank": [1, 4],
            "total_visits_online": [1, 1],
            "total_calls_made": [0, 2],
        }
    )
    parquet.write_table(table, folder / "b.parquet")
    out = tmp_path / "segments.parquet"
    assert main([str(folder), "--out", str(out), "--models-dir", str(models_dir)]) == 0
    written = parquet.read_table(out).to_pylist()
    assert [row["customer_key"] for row in written] == ["k1", "k2", "k3"]
    assert all(row["segment_id"] and row["error"] is None for row in written)
    assert "3 customers, 3 scored" in capsys.readouterr().out


def test_refused_rows_are_named_by_file_line_and_the_exit_status_says_so(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "customers.csv"
    data.write_text(f"{HEADER}\n1,50000,3,0,10,9\n\n2,-5,3,0,10,9\n3,,3,0,10,9\n")
    out = tmp_path / "out.csv"
    database_url = f"sqlite:///{tmp_path / 'store.db'}"
    code = main(
        [str(data), "--out", str(out), "--models-dir", str(models_dir), "--store",
         "--database-url", database_url]
    )  # fmt: skip
    summary = capsys.readouterr().out
    assert code == 1
    assert "3 customers, 1 scored, 2 refused" in summary
    assert f"{data} line 4: avg_credit_limit:" in summary  # the blank line 3 counted
    assert f"{data} line 5: avg_credit_limit: Field required (missing)" in summary
    rows = read_csv(out)
    assert [row["customer_key"] for row in rows] == ["1", "2", "3"]
    assert rows[0]["error"] == "" and rows[1]["segment_id"] == "" and rows[2]["error"]
    assert history_sources(database_url) == {"batch": 1}  # --store: the scored row kept


def test_nothing_is_written_when_the_input_cannot_be_read(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "customers.csv"
    data.write_text("Customer Key,Avg_Credit_Limit\n1,50000\n")
    out = tmp_path / "out.csv"
    assert main([str(data), "--out", str(out), "--models-dir", str(models_dir)]) == 2
    missing = main([str(tmp_path / "none.csv"), "--out", str(out), "--models-dir", str(models_dir)])
    captured = capsys.readouterr()
    assert missing == 2
    assert captured.err.count("error: ") == 2 and "Traceback" not in captured.err
    assert not out.exists()


def test_with_store_an_unreachable_store_exits_non_zero(
    models_dir: Path, bank_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [str(bank_export), "--out", str(tmp_path / "o.csv"), "--store",
         "--models-dir", str(models_dir), "--database-url", "postgresql://postgres@127.0.0.1:1/none"]
    )  # fmt: skip
    assert code == 1
    assert "could not be recorded" in capsys.readouterr().out


def test_the_synthetic_customer_command_writes_a_file_that_scores(
    models_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "synthetic.csv"
    made = subprocess.run(
        [sys.executable, "-m", "training.synthetic", "--rows", "500", "--out", str(data)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    assert len(data.read_text().splitlines()) == 501
    out = tmp_path / "out.csv"
    assert main([str(data), "--out", str(out), "--models-dir", str(models_dir)]) == 0
    assert len(read_csv(out)) == 500


def test_a_progress_bar_shows_on_a_terminal_and_not_in_a_log(
    models_dir: Path, bank_export: Path, tmp_path: Path
) -> None:
    def stderr_of(environment: dict[str, str]) -> str:
        completed = subprocess.run(
            [sys.executable, "-m", "service.score_file", str(bank_export),
             "--out", str(tmp_path / "out.csv"), "--models-dir", str(models_dir)],
            cwd=ROOT, env=environment, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert completed.returncode == 0, completed.stderr
        return completed.stderr

    plain = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    assert stderr_of(plain) == ""  # piped to a file: no bar in the log
    terminal = stderr_of({**plain, "FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"})
    assert bank_export.name in terminal and "100%" in terminal
