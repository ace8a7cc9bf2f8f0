"""`score_file` in one process, on a Dask cluster and with `--dask local`: the answer equals
the service's (`POST /segment/batch`) row by row, and refused rows are named by file and
line in both modes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import psutil
import pytest

from service.score_file import main
from tests.service.whole_base.customer_files import (
    answers_of_the_service,
    compared,
    read_answer,
    synthetic_customers,
    write_parquet,
)


def score(source: Path, out: Path, models_dir: Path, *options: str) -> int:
    return main([str(source), "--out", str(out), "--models-dir", str(models_dir), *options])


def test_the_bank_export_is_answered_as_the_service_answers_it_in_every_mode(
    models_dir: Path,
    bank_export: Path,
    dask_scheduler: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    expected = answers_of_the_service(models_dir, [bank_export.read_bytes()])
    assert len(expected) == 660 and not any(row["error"] for row in expected)
    runs = {
        "one process, CSV": (tmp_path / "single.csv", []),
        "one process, Parquet": (tmp_path / "single.parquet", []),
        # 50 rows a chunk: two pieces of the file, scored by the two workers.
        "Dask, Parquet": (tmp_path / "dask.parquet", ["--dask", dask_scheduler]),
        "Dask, CSV": (tmp_path / "dask.csv", ["--dask", dask_scheduler]),
    }
    for run, (out, options) in runs.items():
        assert score(bank_export, out, models_dir, "--chunk-size", "50", *options) == 0, run
        assert compared(read_answer(out)) == expected, run
    assert capsys.readouterr().out.count("660 customers, 660 scored, 0 refused") == len(runs)


def test_dask_local_starts_a_cluster_of_its_own_answers_the_same_and_closes_it(
    models_dir: Path, bank_export: Path, tmp_path: Path
) -> None:
    expected = answers_of_the_service(models_dir, [bank_export.read_bytes()])
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    out = tmp_path / "local.parquet"
    options = ["--dask", "local", "--dask-workers", "2", "--chunk-size", "100"]
    assert score(bank_export, out, models_dir, *options) == 0
    assert compared(read_answer(out)) == expected
    left = {child.pid for child in psutil.Process().children(recursive=True)} - before
    assert not left, f"worker processes still running: {left}"


def partitioned_base(folder: Path) -> tuple[list[Path], list[bytes]]:
    """A folder of three partitions of 3,000 synthetic customers (Parquet, CSV, Parquet),
    with one bad row in the CSV (line 302) and one in the second Parquet file (row 451);
    and the same customers as the CSV bodies the service is sent."""
    folder.mkdir()
    customers = synthetic_customers(3000, seed=3)
    customers["Avg_Credit_Limit"] = customers["Avg_Credit_Limit"].astype("Int64")
    customers.loc[1500, "Avg_Credit_Limit"] = -5  # CSV: header, then rows 1200.. from line 2
    customers.loc[2550, "Avg_Credit_Limit"] = pd.NA  # Parquet: row 2550 - 2100 + 1
    parts = [customers.iloc[:1200], customers.iloc[1200:2100], customers.iloc[2100:]]
    files = [
        write_parquet(parts[0], folder / "part-0.parquet"),
        folder / "part-1.csv",
        write_parquet(parts[2], folder / "part-2.parquet"),
    ]
    parts[1].to_csv(files[1], index=False)
    return files, [part.to_csv(index=False).encode() for part in parts]


def test_a_folder_of_partitions_with_bad_rows_is_answered_alike_and_the_rows_located(
    models_dir: Path, dask_scheduler: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files, bodies = partitioned_base(tmp_path / "base")
    expected = answers_of_the_service(models_dir, bodies)
    refused = [index for index, row in enumerate(expected) if row["error"]]
    assert refused == [1500, 2550]
    where = [f"{files[1]} line 302", f"{files[2]} row 451"]
    for options in ([], ["--dask", dask_scheduler]):
        out = tmp_path / f"answer-{len(options)}.parquet"
        assert score(files[0].parent, out, models_dir, "--chunk-size", "100", *options) == 1
        answer = read_answer(out)
        assert compared(answer) == expected
        assert [answer[index]["location"] for index in refused] == where
        assert sum(row["location"] is not None for row in answer) == 2
        summary = capsys.readouterr().out
        assert "3000 customers, 2998 scored, 2 refused" in summary
        assert f"  {where[0]}: avg_credit_limit: " in summary
        assert f"  {where[1]}: avg_credit_limit: Field required (missing)" in summary


def test_a_quoted_cell_over_two_lines_keeps_the_lines_of_later_rows_right_in_both_modes(
    models_dir: Path, dask_scheduler: str, tmp_path: Path
) -> None:
    # The key's line break is refused (a control character) but it is one row over lines
    # 3-4: the bad row after it is on line 6, and chunks of 2 lines must not cut it in two.
    data = tmp_path / "quoted.csv"
    data.write_text(
        "customer_key,avg_credit_limit,total_credit_cards,total_visits_bank,"
        "total_visits_online,total_calls_made\n"
        'a,50000,3,0,10,9\n"b\nb",50000,3,0,10,9\nc,50000,3,0,10,9\nd,-1,3,0,10,9\n'
        "e,50000,3,0,10,9\n"
    )
    for options in ([], ["--dask", dask_scheduler]):
        out = tmp_path / f"answer-{len(options)}.csv"
        assert score(data, out, models_dir, "--chunk-size", "2", *options) == 1
        locations = [row["location"] for row in read_answer(out)]
        assert locations == [None, f"{data} line 3", None, f"{data} line 6", None]
