"""`python -m service.score_file`: a whole customer file scored into the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from service.score_file import main
from service.store.customer_store import CustomerStore


def history_sources(database_url: str) -> dict[str, int]:
    store = CustomerStore(database_url)
    with store.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT source, COUNT(*) FROM assignment_history GROUP BY source")
        )
        counts = {source: int(count) for source, count in rows}
    store.dispose()
    return counts


def test_score_file_records_every_customer_in_chunks(
    models_dir: Path, bank_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database_url = f"sqlite:///{tmp_path / 'store.db'}"
    code = main(
        [
            "--data",
            str(bank_export),
            "--models-dir",
            str(models_dir),
            "--database-url",
            database_url,
            "--chunk-size",
            "100",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "660 customers, 660 scored" in out
    assert "branch-loyal" in out and "386" in out
    assert history_sources(database_url) == {"batch": 660}


def test_score_file_reports_invalid_rows_and_scores_the_rest(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "customers.csv"
    data.write_text(
        "Customer Key,Avg_Credit_Limit,Total_Credit_Cards,Total_visits_bank,"
        "Total_visits_online,Total_calls_made\n1,50000,3,0,10,9\n2,-5,3,0,10,9\n"
    )
    database_url = f"sqlite:///{tmp_path / 'store.db'}"
    code = main(
        ["--data", str(data), "--models-dir", str(models_dir), "--database-url", database_url]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "1 rows invalid" in out and "row 2" in out
    assert history_sources(database_url) == {"batch": 1}


def test_score_file_with_missing_column_exits_with_one_message(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "customers.csv"
    data.write_text("Customer Key,Avg_Credit_Limit\n1,50000\n")
    code = main(
        [
            "--data",
            str(data),
            "--models-dir",
            str(models_dir),
            "--database-url",
            f"sqlite:///{tmp_path / 'store.db'}",
        ]
    )
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith("error: ")
    assert "Traceback" not in captured.err
    assert not (tmp_path / "store.db").exists()


def test_score_file_without_store_exits_non_zero(
    models_dir: Path, bank_export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "--data",
            str(bank_export),
            "--models-dir",
            str(models_dir),
            "--database-url",
            "postgresql://postgres@127.0.0.1:1/none",
        ]
    )
    assert code == 1
    assert "could not be recorded" in capsys.readouterr().out
