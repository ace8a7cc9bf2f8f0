"""The soak run: one long wrk run, the workers' memory and the throughput sampled as it goes.

The machine may be shared: each interval also shows the CPU the service used and the CPU
everything else used (wrk included), and the requests served per CPU-second of the service,
which stays flat when the service does not slow down, whatever else runs.

Memory growth is measured from the baseline sample (after the first minute by default,
once caches, compiled kernels and every metric series have settled) to the last sample
under load; the metric series present at the baseline must be all there are at the end.
"""

from __future__ import annotations

import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.servers import RunningServer, process_group_cpu_seconds
from benchmarks.service_probes import (
    SeriesKey,
    describe_series,
    machine_busy_seconds,
    metric_series,
    total,
    worker_memory_mb,
    worker_pids,
)
from benchmarks.tallied_wrk import run_tallied_wrk
from benchmarks.wrk import LoadSettings

MAX_RSS_GROWTH_PERCENT = 10.0
STEADY_THROUGHPUT_BAND = 0.2
"""Throughput (and cost per request) count as steady when every interval after the
baseline is within 20 % of their median."""


@dataclass(frozen=True)
class SoakPlan:
    server: RunningServer
    wrk: str
    bodies_file: Path
    api_key: str
    load: LoadSettings
    sample_every: float
    baseline_seconds: float
    work_dir: Path


@dataclass(frozen=True)
class Sample:
    seconds: float
    requests_per_second: float
    service_cpu_percent: float
    """CPU the service's processes used over the interval, in % of one core."""
    other_cpu_percent: float
    """CPU every other process used (wrk included), in % of one core."""
    requests_per_cpu_second: float
    rss_mb: dict[int, float | None]
    series: int


@dataclass(frozen=True)
class _Reading:
    at: float
    served: float
    service_cpu: float
    machine_cpu: float

    def sample_since(
        self, previous: _Reading, *, started: float, rss_mb: dict[int, float | None], series: int
    ) -> Sample:
        elapsed = self.at - previous.at
        service = self.service_cpu - previous.service_cpu
        other = max(0.0, self.machine_cpu - previous.machine_cpu - service)
        served = self.served - previous.served
        return Sample(
            seconds=round(self.at - started, 1),
            requests_per_second=round(served / elapsed, 1),
            service_cpu_percent=round(100 * service / elapsed, 1),
            other_cpu_percent=round(100 * other / elapsed, 1),
            requests_per_cpu_second=round(served / service, 1) if service else 0.0,
            rss_mb=rss_mb,
            series=series,
        )


def _reading(server: RunningServer, series: dict[SeriesKey, float]) -> _Reading:
    return _Reading(
        at=time.monotonic(),
        served=total(series, "segmentation_http_requests_total", route="/segment"),
        service_cpu=process_group_cpu_seconds(server.pid),
        machine_cpu=machine_busy_seconds(),
    )


def measure_soak(plan: SoakPlan) -> dict[str, Any]:
    """Drive the service for the plan's duration; sample; judge memory, series, throughput."""
    server, base = plan.server, plan.server.spec.base_url
    server.wait_until_idle()
    pids = worker_pids(server.pid)
    print(
        f"\nsoak: {plan.load.duration_seconds:g} s at {plan.load.connections} connections, "
        f"a sample every {plan.sample_every:g} s, memory growth from "
        f"{plan.baseline_seconds:g} s on; CPU in % of one core, of {os.cpu_count()}\n"
        f"{'s':>6}{'req/s':>10}{'svc CPU':>9}{'other':>7}{'req/CPU-s':>11}  RSS MB per worker",
        flush=True,
    )
    samples: list[Sample] = []
    baseline: tuple[Sample, set[SeriesKey]] | None = None
    with ThreadPoolExecutor(max_workers=1) as pool:
        previous = _reading(server, metric_series(base))
        started = previous.at
        running = pool.submit(
            run_tallied_wrk,
            plan.wrk,
            url=base + "/segment",
            bodies_file=plan.bodies_file,
            api_key=plan.api_key,
            load=plan.load,
            log_file=plan.work_dir / "wrk.log",
        )
        beat = 1
        while True:
            wake = started + beat * plan.sample_every
            while not running.done() and time.monotonic() < wake:
                time.sleep(min(0.2, max(0.0, wake - time.monotonic())))
            if running.done():
                break
            series = metric_series(base)
            reading = _reading(server, series)
            sample = reading.sample_since(
                previous,
                started=started,
                rss_mb=worker_memory_mb(worker_pids(server.pid)),
                series=len(series),
            )
            previous = reading
            samples.append(sample)
            _print_sample(sample)
            if baseline is None and sample.seconds >= plan.baseline_seconds:
                baseline = (sample, set(series))
            beat += 1
        run = running.result()
    end_series = set(metric_series(base))
    return _judge(run.figures(), samples, baseline, end_series, pids, worker_pids(server.pid))


def _print_sample(sample: Sample) -> None:
    memory = "  ".join(f"{pid}: {mb:.1f}" for pid, mb in sample.rss_mb.items() if mb is not None)
    print(
        f"{sample.seconds:>6.0f}{sample.requests_per_second:>10.1f}"
        f"{sample.service_cpu_percent:>8.0f}%{sample.other_cpu_percent:>6.0f}%"
        f"{sample.requests_per_cpu_second:>11.1f}  {memory}",
        flush=True,
    )


def _spread(values: list[float]) -> dict[str, float | bool]:
    """Median, min and max, and whether every value is within the steady band of the median."""
    median = statistics.median(values)
    return {
        "median": round(median, 1),
        "min": min(values),
        "max": max(values),
        "steady": all(abs(value - median) <= STEADY_THROUGHPUT_BAND * median for value in values),
    }


def _judge(
    figures: dict[str, Any],
    samples: list[Sample],
    baseline: tuple[Sample, set[SeriesKey]] | None,
    end_series: set[SeriesKey],
    pids_before: list[int],
    pids_after: list[int],
) -> dict[str, Any]:
    if baseline is None or not samples:
        raise RuntimeError("the soak ended before its baseline sample: run it longer")
    first, baseline_series = baseline
    last = samples[-1]
    growth = {
        str(pid): round(100 * (last.rss_mb[pid] or 0) / mb - 100, 2)
        for pid, mb in first.rss_mb.items()
        if mb and last.rss_mb.get(pid)
    }
    later = [s for s in samples if s.seconds > first.seconds] or [last]
    throughput = _spread([s.requests_per_second for s in later])
    efficiency = _spread([s.requests_per_cpu_second for s in later])
    new_series = sorted(describe_series(key) for key in end_series - baseline_series)
    band = f"{STEADY_THROUGHPUT_BAND:.0%}"
    print(
        f"\nrequests {figures['requests']} ({figures['requests_per_second']} req/s), errors "
        f"{figures['errors']}, p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms\n"
        f"RSS growth from {first.seconds:g} s to {last.seconds:g} s: "
        + ", ".join(f"worker {pid} {percent:+.2f} %" for pid, percent in growth.items())
        + f" (target < {MAX_RSS_GROWTH_PERCENT:g} %)\n"
        f"after {first.seconds:g} s: req/s median {throughput['median']}, min "
        f"{throughput['min']}, max {throughput['max']}; requests per service CPU-second median "
        f"{efficiency['median']}, min {efficiency['min']}, max {efficiency['max']}\n"
        f"/metrics series: {len(baseline_series)} at {first.seconds:g} s, {len(end_series)} at "
        f"the end, {len(new_series)} new" + "".join(f"\n  new: {name}" for name in new_series[:20])
    )
    return {
        "run": figures,
        "samples": [
            {
                "seconds": s.seconds,
                "requests_per_second": s.requests_per_second,
                "service_cpu_percent": s.service_cpu_percent,
                "other_cpu_percent": s.other_cpu_percent,
                "requests_per_cpu_second": s.requests_per_cpu_second,
                "rss_mb": {str(pid): mb for pid, mb in s.rss_mb.items()},
                "metric_series": s.series,
            }
            for s in samples
        ],
        "baseline_seconds": first.seconds,
        "rss_growth_percent": growth,
        "throughput_after_baseline": throughput,
        "requests_per_cpu_second_after_baseline": efficiency,
        "metric_series": {
            "at_baseline": len(baseline_series),
            "at_end": len(end_series),
            "new": new_series,
        },
        "workers": {"before": pids_before, "after": pids_after},
        "targets": {
            "zero errors": figures["errors"] == 0,
            f"RSS growth after the baseline < {MAX_RSS_GROWTH_PERCENT:g} % (every worker)": bool(
                growth
            )
            and all(percent < MAX_RSS_GROWTH_PERCENT for percent in growth.values()),
            "no new /metrics series after the baseline": not new_series,
            f"throughput steady (every interval's req/s within {band} of their median)": bool(
                throughput["steady"]
            ),
            f"cost per request steady (requests per service CPU-second within {band})": bool(
                efficiency["steady"]
            ),
            "no worker restarted": pids_before == pids_after,
            "last window's req/s >= 0.8 x the first's": samples[-1].requests_per_second
            >= 0.8 * samples[0].requests_per_second,
        },
    }
