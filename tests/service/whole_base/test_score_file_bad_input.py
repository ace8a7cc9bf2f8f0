"""`score_file` on bad input, in one process and on Dask: a missing, damaged or wrongly shaped
partition, an unreachable scheduler, Dask not installed. Each ends the run with exit status
2 and one line naming the cause (no traceback), and no answer file: an earlier answer
stays as it was and no hidden partial file is left beside it."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as parquet
import pytest

from service import score_file
from service.score_file import main
from service.whole_base.pieces import plan_pieces
from tests.service.whole_base.customer_files import (
    BANK_HEADER,
    synthetic_customers,
    write_parquet,
)

ROOT = Path(__file__).resolve().parents[3]
EARLIER_ANSWER = "customer_key,segment_id\nk0,earlier-run\n"


@pytest.fixture(params=["one process", "dask"])
def mode(request: pytest.FixtureRequest) -> list[str]:
    """The options of each way to run: none, or a Dask cluster's address."""
    if request.param == "dask":
        return ["--dask", request.getfixturevalue("dask_scheduler")]
    return []


def partitioned(folder: Path, parts: int = 3) -> list[Path]:
    """A folder of Parquet partitions of 600 customers each, in row groups of 250."""
    folder.mkdir()
    return [
        write_parquet(synthetic_customers(600, seed=part), folder / f"part-{part}.parquet")
        for part in range(parts)
    ]


def refused_run(
    source: Path,
    out: Path,
    models_dir: Path,
    capsys: pytest.CaptureFixture[str],
    *options: str,
) -> str:
    """Run over an earlier answer; check the run ended as a refusal should. Its message."""
    out.write_text(EARLIER_ANSWER)
    code = main([str(source), "--out", str(out), "--models-dir", str(models_dir),
                 "--chunk-size", "100", *options])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    assert out.read_text() == EARLIER_ANSWER
    assert [path.name for path in out.parent.iterdir() if path.name.startswith(".")] == []
    return lines[0]


def test_a_partition_gone_after_the_folder_was_listed_is_named(
    models_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mode: list[str],
) -> None:
    files = partitioned(tmp_path / "base")

    def plan_then_lose_a_file(*args: Any, **options: Any) -> Any:
        pieces = plan_pieces(*args, **options)
        files[1].unlink()  # as when another job rewrites the folder during the run
        return pieces

    monkeypatch.setattr(score_file, "plan_pieces", plan_then_lose_a_file)
    message = refused_run(files[0].parent, tmp_path / "answer.csv", models_dir, capsys, *mode)
    assert message == f"error: {files[1]}: cannot be read: No such file or directory"


def test_an_input_that_does_not_exist_is_named(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: list[str]
) -> None:
    missing = tmp_path / "base" / "part-9.parquet"
    message = refused_run(missing, tmp_path / "answer.csv", models_dir, capsys, *mode)
    assert message == f"error: {missing}: no such file or folder"


def garbage(path: Path) -> str:
    path.write_bytes(b"PAR1" + os.urandom(2000))
    return "not a readable Parquet file: "


def damaged_page(path: Path) -> str:
    """Bytes of a page header in the second row group overwritten: the footer still reads,
    so the damage shows only while the rows are read (on a worker, with Dask)."""
    data = bytearray(path.read_bytes())
    column = parquet.ParquetFile(io.BytesIO(bytes(data))).metadata.row_group(1).column(2)
    for offset in range(column.data_page_offset + 8, column.data_page_offset + 40):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    return "cannot be read: Couldn't deserialize thrift: "


@pytest.mark.parametrize("damage", [garbage, damaged_page], ids=["footer", "page"])
def test_a_damaged_parquet_partition_is_named_with_the_reason(
    models_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mode: list[str],
    damage: Callable[[Path], str],
) -> None:
    files = partitioned(tmp_path / "base")
    reason = damage(files[2])
    message = refused_run(files[0].parent, tmp_path / "answer.parquet", models_dir, capsys, *mode)
    assert message.startswith(f"error: {files[2]}: {reason}")


def test_a_partition_with_the_wrong_columns_is_named_with_what_is_missing_and_unexpected(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: list[str]
) -> None:
    files = partitioned(tmp_path / "base", parts=2)
    wrong = files[0].parent / "part-1b.csv"
    wrong.write_text(BANK_HEADER.replace(",Total_calls_made", ",Region") + "\n1,2,3,4,5,x\n")
    message = refused_run(files[0].parent, tmp_path / "answer.csv", models_dir, capsys, *mode)
    assert message == (
        f"error: {wrong}: wrong columns: missing total_calls_made; unexpected region "
        "(expected avg_credit_limit, total_credit_cards, total_visits_bank, "
        "total_visits_online, total_calls_made, optionally customer_key)"
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_unreachable_scheduler_is_named_with_the_cause(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = partitioned(tmp_path / "base", parts=1)
    address = f"tcp://127.0.0.1:{closed_port()}"
    options = ["--dask", address, "--dask-timeout", "1"]
    message = refused_run(files[0], tmp_path / "answer.csv", models_dir, capsys, *options)
    assert message.startswith(f"error: cannot reach the Dask scheduler at {address}: ")
    assert "Timed out trying to connect" in message


def test_a_scheduler_without_workers_is_refused_instead_of_waited_on_forever(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from distributed import LocalCluster

    files = partitioned(tmp_path / "base", parts=1)
    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as idle:
        options = ["--dask", idle.scheduler_address, "--dask-timeout", "1"]
        message = refused_run(files[0], tmp_path / "answer.csv", models_dir, capsys, *options)
    assert message == (
        f"error: the Dask scheduler at {idle.scheduler_address} has no workers (waited 1 s)"
    )


def test_store_with_dask_is_refused_with_the_reason(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = partitioned(tmp_path / "base", parts=1)
    options = ["--dask", "local", "--store"]
    message = refused_run(files[0], tmp_path / "answer.csv", models_dir, capsys, *options)
    assert message.startswith("error: --store cannot be used with --dask: ")


def run_without_dask(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    """The command in a Python where Dask cannot be imported; reports whether it was."""
    program = (
        "import sys\n"
        "sys.modules['dask'] = sys.modules['distributed'] = None  # not installed\n"
        "from service.score_file import main\n"
        "code = main(sys.argv[1:])\n"
        "print('dask imported:', any(name.startswith('dask.') for name in sys.modules))\n"
        "raise SystemExit(code)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", program, *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_without_dask_one_process_works_and_dask_asks_for_the_extra(
    models_dir: Path, tmp_path: Path
) -> None:
    files = partitioned(tmp_path / "base", parts=1)
    common = [str(files[0]), "--models-dir", str(models_dir)]
    plain = run_without_dask([*common, "--out", str(tmp_path / "plain.csv")])
    assert plain.returncode == 0, plain.stderr
    assert "dask imported: False" in plain.stdout
    asked = run_without_dask([*common, "--out", str(tmp_path / "dask.csv"), "--dask", "local"])
    assert asked.returncode == 2
    assert asked.stderr.startswith("error: --dask needs Dask, which is not installed")
    assert asked.stderr.splitlines()[0].endswith("pip install 'customer-segmentation[dask]'")
    assert len(asked.stderr.splitlines()) == 1
    assert not (tmp_path / "dask.csv").exists()
