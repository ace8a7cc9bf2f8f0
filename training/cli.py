"""Command line of the training job: options in, a published model and a summary out."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import Progress as RichProgress
from rich.table import Table

from segmentation.lifecycle import LifecycleError
from training import compare_cli, mlflow_export
from training.job import TrainingOptions, TrainingResult, UnfaithfulServingNumbers, train
from training.loading import InvalidCustomerData
from training.personas import InvalidPlaybook

logger = logging.getLogger(__name__)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} should be >= 1")
    return value


def _segments(text: str) -> int:
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"{value} should be >= 2 (one segment is no segmentation)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train, name and publish a customer segmentation model "
        "(`python -m training compare CANDIDATE --help`: compare two versions).",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--data",
        type=Path,
        help="customer export (.csv, .xlsx or .parquet); default: the bundled sample",
    )
    source.add_argument(
        "--synthetic", type=_positive, metavar="N", help="train on N seeded synthetic customers"
    )
    parser.add_argument(
        "--models-dir", type=Path, default=Path(os.environ.get("MODELS_DIR", "models"))
    )
    parser.add_argument("--k", type=_segments, help="number of segments (default: best silhouette)")
    parser.add_argument("--k-min", type=_segments, default=2)
    parser.add_argument("--k-max", type=_segments, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--playbook", type=Path, help="persona playbook (default: the bundled one)")
    parser.add_argument(
        "--bootstrap", type=int, default=20, help="bootstrap resamples for stability"
    )
    parser.add_argument(
        "--sample-size",
        type=_positive,
        default=20_000,
        help="customers the k sweep and checks use on larger data",
    )
    parser.add_argument("--silhouette-sample-size", type=_positive, default=10_000)
    parser.add_argument(
        "--promote",
        action="store_true",
        help="make the new version the active one at once (default: publish it as a "
        "candidate, unless the models directory has no active version yet)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    return parser


class _BarProgress:
    def __init__(self, bars: RichProgress) -> None:
        self._bars = bars

    def start(self, description: str, total: int) -> Callable[[], None]:
        task = self._bars.add_task(description, total=total)
        return lambda: self._bars.advance(task)


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["compare"]:
        return compare_cli.main(given[1:])
    if given[:1] == ["export-mlflow"]:
        return mlflow_export.main(given[1:])
    arguments = build_parser().parse_args(given)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if arguments.k_min > arguments.k_max:
        return _fail(f"--k-min={arguments.k_min} should be <= --k-max={arguments.k_max}")
    options = TrainingOptions(
        models_dir=arguments.models_dir,
        data=arguments.data,
        synthetic=arguments.synthetic,
        k=arguments.k,
        k_min=arguments.k_min,
        k_max=arguments.k_max,
        seed=arguments.seed,
        playbook=arguments.playbook,
        n_bootstrap=max(arguments.bootstrap, 0),
        sample_size=arguments.sample_size,
        silhouette_sample_size=arguments.silhouette_sample_size,
        signing_key=os.environ.get("MODEL_SIGNING_KEY") or None,
        promote=arguments.promote,
    )
    console = Console(stderr=True)
    # Bars only on a terminal: logs of scheduled runs stay readable.
    with RichProgress(console=console, disable=arguments.quiet or not console.is_terminal) as bars:
        try:
            result = train(options, progress=_BarProgress(bars))
        except (
            InvalidCustomerData,
            InvalidPlaybook,
            LifecycleError,
            UnfaithfulServingNumbers,
        ) as error:
            return _fail(str(error))
    if not arguments.quiet:
        summary = Console()
        if not summary.is_terminal:  # a log or a pipe: no screen to fit, nothing to cut
            summary = Console(width=PLAIN_WIDTH)
        summary.print(summary_table(result))
        # Not a caption: a caption wraps to the table's width, cutting the path in two.
        summary.print(written_to(result), soft_wrap=True, markup=False, highlight=False)
    return 0


PLAIN_WIDTH = 200
"""Characters per line of the summary when it is not shown on a terminal."""


def _fail(message: str) -> int:
    sys.stderr.write(f"error: {message}\nnothing was written.\n")
    return 2


def summary_table(result: TrainingResult) -> Table:
    manifest = result.manifest
    metrics = manifest.metrics
    table = Table(
        title=(
            f"model {result.version}: k={manifest.k} ({metrics.selection}), "
            f"silhouette {metrics.silhouette:.3f}, knee at k={metrics.knee_k}, "
            f"{manifest.n_rows} customers"
        )
    )
    for column in ("segment", "name", "customers", "share", "sets it apart"):
        table.add_column(column)
    for segment in manifest.segments:
        traits = ", ".join(
            f"{trait.direction} {trait.feature}" for trait in segment.distinguishing_features
        )
        table.add_row(
            segment.segment_id, segment.name, str(segment.size), f"{segment.share:.1%}", traits
        )
    return table


def written_to(result: TrainingResult) -> str:
    """Where the version went, and whether it is the active one now."""
    standing = (
        "active: `latest` names it"
        if result.promoted
        else "a candidate: `latest` is unchanged; compare it, then promote it with "
        "POST /admin/promote"
    )
    return f"written to {result.path}, {standing}"
