# mypy: allow-untyped-calls
# (Dask's LocalCluster and Client carry no annotations.)
"""Scoring a whole customer base from Parquet: in one process against on Dask.

    .venv/bin/python -m benchmarks.score_whole_base [--rows 10000000] [--files 20]
        [--workers N] [--models-dir DIR] [--data DIR]

Measures ``python -m service.score_file`` on ``--rows`` synthetic customers (the project's
seeded generator) written as ``--files`` Parquet partitions in row groups of 100,000, once
in one process and once on a Dask ``LocalCluster`` of ``--workers`` single-threaded worker
processes (default: the machine's cores). Each run happens in a fresh child process, so
that its peak memory is its own. Reported for each: the seconds the command took once
started (model loading included; the cluster's start-up excluded and given apart), rows
per second, the peak resident memory of the process that ran the command (for Dask: the
client, the in-process scheduler and the writer) and of each Dask worker, then the
scaling ratio (Dask's rows per second over one process's; the ideal is the number of
workers) and whether both answers are identical row for row.

The partitions are kept in the temporary folder and reused by later runs with the same
``--rows`` and ``--files``; the model is trained on the bank's export unless
``--models-dir`` names one. Figures go to ``benchmarks/results/score_whole_base.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as arrow
import pyarrow.parquet as parquet

RESULTS = Path(__file__).parent / "results"
ROW_GROUP_ROWS = 100_000
COMPARED_ROWS = 100_000
"""Rows compared at a time when checking that both answers are identical."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=None, help="where the partitions go")
    parser.add_argument("--measure", choices=["single", "dask"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.measure:
        return _measure(arguments)
    data = arguments.data or Path(tempfile.gettempdir()) / (
        f"segmentation-whole-base-{arguments.rows}-{arguments.files}"
    )
    partitions = customer_partitions(data / "customers", arguments.rows, arguments.files)
    models = arguments.models_dir or trained_model(data / "models")
    answers = data / "answers"
    answers.mkdir(exist_ok=True)
    runs = {
        mode: _child_run(mode, partitions, models, answers / f"{mode}.parquet", arguments.workers)
        for mode in ("single", "dask")
    }
    identical = same_answers(answers / "single.parquet", answers / "dask.parquet")
    shutil.rmtree(answers)
    figures = _figures(arguments, runs, identical)
    _print(figures)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "score_whole_base.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def customer_partitions(folder: Path, rows: int, files: int) -> Path:
    """``rows`` synthetic customers in ``files`` Parquet files (made once, then reused)."""
    marker = folder / "_COMPLETE"
    if marker.exists():
        return folder
    from training.synthetic import generate_customers

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    for part in range(files):
        size = rows // files + (1 if part < rows % files else 0)
        table = arrow.Table.from_pandas(generate_customers(size, seed=part), preserve_index=False)
        parquet.write_table(
            table, folder / f"part-{part:04d}.parquet", row_group_size=ROW_GROUP_ROWS
        )
    marker.write_text(f"{rows} rows in {files} files\n")  # the name starts with _: not input
    print(f"wrote {rows:,} customers in {files} files in {time.perf_counter() - started:.0f} s")
    return folder


def trained_model(models: Path) -> Path:
    """A model trained on the bank's export (once; reused by later runs)."""
    if not (models / "latest").exists():
        from training.job import TrainingOptions, train

        train(TrainingOptions(models_dir=models, n_bootstrap=2))
    return models


def _child_run(mode: str, data: Path, models: Path, out: Path, workers: int) -> dict[str, Any]:
    """One measured run, in a child process of its own."""
    command = [sys.executable, "-m", "benchmarks.score_whole_base", "--measure", mode,
               "--data", str(data), "--models-dir", str(models), "--out", str(out),
               "--workers", str(workers)]  # fmt: skip
    print(f"scoring in {'one process' if mode == 'single' else f'Dask, {workers} workers'} ...")
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    figures: dict[str, Any] = json.loads(completed.stdout.splitlines()[-1])
    return figures


def _measure(arguments: argparse.Namespace) -> int:
    """In the child: run the command once and print its figures as one JSON line."""
    from service.score_file import main as score_file

    command = [str(arguments.data), "--out", str(arguments.out),
               "--models-dir", str(arguments.models_dir)]  # fmt: skip
    figures: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        if arguments.measure == "dask":
            client, address, started = _local_cluster(stack, arguments.workers)
            figures["cluster_start_seconds"] = started
            command += ["--dask", address]
            figures["worker_rss_before_mib"] = _worker_memory(client, _resident_mib)
        began = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # the command's summary, for the log
            code = score_file(command)
        figures["seconds"] = time.perf_counter() - began
        if arguments.measure == "dask":
            figures["worker_peak_rss_mib"] = _worker_memory(client, _peak_resident_mib)
    if code != 0:
        raise SystemExit(f"score_file exited with {code}")
    figures["command_peak_rss_mib"] = _peak_resident_mib()
    print(json.dumps(figures))
    return 0


def _local_cluster(stack: contextlib.ExitStack, workers: int) -> tuple[Any, str, float]:
    """A client of a new cluster like ``--dask local``'s, its address, its start-up time."""
    from distributed import Client, LocalCluster

    began = time.perf_counter()
    cluster = stack.enter_context(
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        )
    )
    client = stack.enter_context(Client(cluster))
    client.wait_for_workers(workers)
    return client, cluster.scheduler_address, time.perf_counter() - began


def _worker_memory(client: Any, measure: Any) -> list[float]:
    by_worker: dict[str, float] = client.run(measure)
    return [round(by_worker[address], 1) for address in sorted(by_worker)]


def _peak_resident_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _resident_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def same_answers(first: Path, second: Path) -> bool:
    """Whether two answer files hold the same rows in the same order (read in batches)."""
    with parquet.ParquetFile(first) as one, parquet.ParquetFile(second) as other:
        if one.metadata.num_rows != other.metadata.num_rows:
            return False
        batches = zip(
            one.iter_batches(batch_size=COMPARED_ROWS),
            other.iter_batches(batch_size=COMPARED_ROWS),
            strict=True,
        )
        return all(a.equals(b) for a, b in batches)


def _figures(
    arguments: argparse.Namespace, runs: dict[str, dict[str, Any]], identical: bool
) -> dict[str, Any]:
    for figures in runs.values():
        figures["rows_per_second"] = round(arguments.rows / figures["seconds"])
        figures["seconds"] = round(figures["seconds"], 1)
        figures["command_peak_rss_mib"] = round(figures["command_peak_rss_mib"], 1)
    ratio = runs["dask"]["rows_per_second"] / runs["single"]["rows_per_second"]
    return {
        "rows": arguments.rows,
        "files": arguments.files,
        "cores": os.cpu_count(),
        "dask_workers": arguments.workers,
        "single": runs["single"],
        "dask": runs["dask"],
        "scaling_ratio": round(ratio, 2),
        "answers_identical": identical,
    }


def _print(figures: dict[str, Any]) -> None:
    single, dask = figures["single"], figures["dask"]
    print(f"\n{figures['rows']:,} customers in {figures['files']} Parquet files, "
          f"{figures['cores']} cores")  # fmt: skip
    print(f"  {'':<24} {'seconds':>8} {'rows/s':>10} {'peak RSS (MiB)':>16}")
    print(f"  {'one process':<24} {single['seconds']:>8} {single['rows_per_second']:>10,} "
          f"{single['command_peak_rss_mib']:>16}")  # fmt: skip
    label = f"Dask, {figures['dask_workers']} workers"
    print(f"  {label:<24} {dask['seconds']:>8} {dask['rows_per_second']:>10,} "
          f"{dask['command_peak_rss_mib']:>16} (command: client, scheduler, writer)")  # fmt: skip
    for number, (before, peak) in enumerate(
        zip(dask["worker_rss_before_mib"], dask["worker_peak_rss_mib"], strict=True)
    ):
        print(f"  {f'  worker {number}':<24} {'':>8} {'':>10} {peak:>16} (before the run {before})")
    print(f"  cluster start-up {dask['cluster_start_seconds']:.1f} s (not in the Dask figure)")
    print(f"  scaling ratio {figures['scaling_ratio']} (ideal {figures['dask_workers']}); "
          f"answers identical: {'yes' if figures['answers_identical'] else 'NO'}")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
