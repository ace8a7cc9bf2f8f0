"""Looking at a running service from outside: its workers, their memory and its metrics."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.servers import resident_memory_mb

SeriesKey = tuple[str, frozenset[tuple[str, str]]]
"""One Prometheus series: the sample name and its label set."""


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes
    seconds: float

    def json(self) -> object:
        return orjson.loads(self.body)


def request(
    url: str,
    *,
    method: str = "GET",
    body: object = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> HttpAnswer:
    """One HTTP call; the status and body also for 4xx and 5xx answers."""
    data = None if body is None else orjson.dumps(body)
    sent_headers = {"Content-Type": "application/json", **(headers or {})}
    call = urllib.request.Request(url, data=data, method=method, headers=sent_headers)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(call, timeout=timeout) as response:
            status: int = response.status
            content = response.read()
    except urllib.error.HTTPError as error:
        status, content = error.code, error.read()
    return HttpAnswer(status, content, time.perf_counter() - started)


def worker_pids(parent: int) -> list[int]:
    """The uvicorn worker processes of ``python -m service`` (the process itself with one worker).

    With several workers uvicorn starts them with multiprocessing's spawn, beside a
    resource tracker that serves nothing; only the spawned children are workers.
    """
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent and b"spawn_main" in command:
            children.append(int(stat.parent.name))
    return sorted(children) or [parent]


def worker_memory_mb(pids: list[int]) -> dict[int, float | None]:
    """Each worker's resident memory (VmRSS) in MB."""
    return {pid: resident_memory_mb(pid) for pid in pids}


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent busy (all cores, every process), from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def metric_series(base_url: str) -> dict[SeriesKey, float]:
    """Every series ``/metrics`` exposes, with its value."""
    answer = request(base_url + "/metrics")
    if answer.status != 200:
        raise RuntimeError(f"/metrics answered {answer.status}")
    series: dict[SeriesKey, float] = {}
    for family in text_string_to_metric_families(answer.body.decode()):
        for sample in family.samples:
            series[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return series


def total(series: Mapping[SeriesKey, float], name: str, **labels: str) -> float:
    """The sum of every series called ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(
        value
        for (sample, label_set), value in series.items()
        if sample == name and wanted <= label_set
    )


def active_versions(series: Mapping[SeriesKey, float]) -> dict[str, str]:
    """Which version each worker (by pid) reports as served, from the active-model gauge."""
    served = {}
    for (sample, label_set), value in series.items():
        labels = dict(label_set)
        if sample == "segmentation_active_model" and value == 1.0:
            served[labels.get("pid", "this process")] = labels["version"]
    return served


def describe_series(key: SeriesKey) -> str:
    name, label_set = key
    labels = ",".join(f'{label}="{value}"' for label, value in sorted(label_set))
    return f"{name}{{{labels}}}"
