"""``python -m training compare CANDIDATE``: compare a version with the active one (or another).

Both versions are verified as the service verifies them, then score the candidate's
training customers; the comparison goes into the candidate's folder as ``comparison.json``
and ``comparison.html``. Exit status 0 when the verdict says switch, 1 when it says not to,
2 on bad input (nothing written).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from segmentation import lifecycle
from segmentation.artifact import ArtifactError, check_version_name
from segmentation.comparison import ComparedVersion, Comparison, Thresholds, compare
from training.comparison_page import COMPARISON_HTML, write_comparison


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} should be a share between 0 and 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    defaults = Thresholds()
    parser = argparse.ArgumentParser(
        prog="python -m training compare",
        description="Compare a candidate with the active version (or --against another): "
        "who would move where, and whether to switch.",
    )
    parser.add_argument("candidate", help="the version to compare")
    parser.add_argument("--against", help="the version to compare with (default: the active one)")
    parser.add_argument(
        "--models-dir", type=Path, default=Path(os.environ.get("MODELS_DIR", "models"))
    )
    parser.add_argument(
        "--max-moved-share",
        type=_share,
        default=defaults.max_moved_share,
        help="at most this share of customers may change segment (default %(default)s)",
    )
    parser.add_argument(
        "--min-adjusted-rand-index",
        type=float,
        default=defaults.min_adjusted_rand_index,
        help="the two segmentations must agree at least this much (default %(default)s)",
    )
    parser.add_argument(
        "--allow-lost-personas",
        action="store_true",
        help="do not count a persona that disappears against the candidate",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    arguments = build_parser().parse_args(argv)
    models_dir: Path = arguments.models_dir
    against = arguments.against or lifecycle.active_version(models_dir)
    if against is None:
        return _fail(f"{models_dir} has no active version to compare with: name one with --against")
    thresholds = Thresholds(
        max_moved_share=arguments.max_moved_share,
        min_adjusted_rand_index=arguments.min_adjusted_rand_index,
        allow_lost_personas=arguments.allow_lost_personas,
    )
    keys = (os.environ["MODEL_SIGNING_KEY"],) if os.environ.get("MODEL_SIGNING_KEY") else ()
    try:
        candidate_dir = models_dir / check_version_name(arguments.candidate)
        candidate = ComparedVersion.load(models_dir, arguments.candidate, signing_keys=keys)
        previous = ComparedVersion.load(models_dir, against, signing_keys=keys)
    except ArtifactError as error:
        return _fail(error.message)
    comparison = compare(candidate, previous, candidate.training.features, thresholds)
    try:
        write_comparison(candidate_dir, comparison)
    except OSError as error:
        return _fail(f"{candidate_dir} cannot be written: {error.strerror or error}")
    _print(comparison, candidate_dir / COMPARISON_HTML)
    return 0 if comparison.verdict.ok else 1


def _print(comparison: Comparison, page: Path) -> None:
    console = Console()
    verdict = "[green]switch[/green]" if comparison.verdict.ok else "[red]do not switch[/red]"
    console.print(f"{comparison.candidate} against {comparison.against}: {verdict}")
    for reason in comparison.verdict.reasons:
        console.print(f"  - {reason}", markup=False)
    console.print(f"written to {page} (and comparison.json beside it)", markup=False)


def _fail(message: str) -> int:
    sys.stderr.write(f"error: {message}\nnothing was written.\n")
    return 2
