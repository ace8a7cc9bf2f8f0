"""Train on a large synthetic customer base and print the time per stage and the peak memory.

    .venv/bin/python -m benchmarks.train_large [--customers 1000000] [--seed 0]

Target (issue: training): 1,000,000 customers in under 2 minutes and under 4 GiB.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from training.job import TrainingOptions, train

RESULTS = Path(__file__).parent / "results"


def peak_memory_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as models_dir:
        started = time.perf_counter()
        result = train(
            TrainingOptions(
                models_dir=Path(models_dir), synthetic=arguments.customers, seed=arguments.seed
            )
        )
        total = time.perf_counter() - started
    figures = {
        "customers": arguments.customers,
        "k": result.manifest.k,
        "silhouette": round(result.manifest.metrics.silhouette, 4),
        "segment_sizes": {s.segment_id: s.size for s in result.manifest.segments},
        "stage_seconds": {stage: round(seconds, 2) for stage, seconds in result.timings.items()},
        "total_seconds": round(total, 2),
        "peak_memory_mib": round(peak_memory_mib(), 1),
    }
    print(f"training on {arguments.customers:,} synthetic customers")
    for stage, seconds in figures["stage_seconds"].items():
        print(f"  {stage:<12} {seconds:8.2f} s")
    print(f"  {'total':<12} {total:8.2f} s   (target < 120 s)")
    print(f"  peak memory  {figures['peak_memory_mib']:8.1f} MiB (target < 4096 MiB)")
    print(f"  k={figures['k']} silhouette={figures['silhouette']} sizes={figures['segment_sizes']}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train_large.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
