"""A retrain compared with the active version: who would move where, and the verdict."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from segmentation.artifact import ASSIGNMENTS_FILE, read_latest
from segmentation.assignments_file import read_assignments
from segmentation.comparison import ComparedVersion, Thresholds, adjusted_rand_index, compare
from training.cli import main
from training.comparison_page import COMPARISON_HTML, COMPARISON_JSON
from training.job import TrainingResult


def written_comparison(result: TrainingResult) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((result.path / COMPARISON_JSON).read_text())
    return document


def test_a_retrain_with_another_seed_is_a_candidate_that_moves_almost_nobody(
    models_dir: Path, trained: TrainingResult, quick_train: Callable[..., TrainingResult]
) -> None:
    candidate = quick_train(models_dir, seed=11, k=3, k_max=3)

    assert not candidate.promoted
    assert read_latest(models_dir) == trained.version
    comparison = written_comparison(candidate)
    assert (comparison["candidate"], comparison["against"]) == (candidate.version, trained.version)
    assert comparison["n_customers"] == 660
    assert comparison["moved"] <= 5
    assert comparison["adjusted_rand_index"] >= 0.98
    assert comparison["verdict"]["ok"] is True
    assert sum(flow["count"] for flow in comparison["transitions"]) == 660
    page = (candidate.path / COMPARISON_HTML).read_text()
    assert "Who would move where" in page and "data:image/png;base64," in page
    assert 'href="comparison.html"' in (candidate.path / "report.html").read_text()


def test_the_written_figures_are_those_of_scoring_both_versions_offline(
    models_dir: Path, trained: TrainingResult, quick_train: Callable[..., TrainingResult]
) -> None:
    candidate = quick_train(models_dir, seed=5, k=4, k_max=4)
    features = read_assignments(candidate.path / ASSIGNMENTS_FILE).features
    before = ComparedVersion.load(models_dir, trained.version).segment_ids(features)
    after = ComparedVersion.load(models_dir, candidate.version).segment_ids(features)

    comparison = written_comparison(candidate)

    moved = sum(old != new for old, new in zip(before, after, strict=True))
    assert comparison["moved"] == moved
    assert comparison["moved_share"] == pytest.approx(moved / len(features))
    pairs = pd.Series(list(zip(before, after, strict=True))).value_counts()
    assert {(f["from"], f["to"]): f["count"] for f in comparison["transitions"]} == dict(pairs)


def test_customers_who_changed_are_flagged_with_where_they_go(
    models_dir: Path,
    trained: TrainingResult,
    bank_frame: pd.DataFrame,
    tmp_path: Path,
    quick_train: Callable[..., TrainingResult],
) -> None:
    shifted = bank_frame.copy()
    shifted["Avg_Credit_Limit"] = (shifted["Avg_Credit_Limit"] * 1.5).round()
    shifted["Total_visits_online"] = shifted["Total_visits_online"] * 2
    path = tmp_path / "shifted.csv"
    shifted.to_csv(path, index=False)

    candidate = quick_train(models_dir, data=path, k=3, k_max=3)

    comparison = written_comparison(candidate)
    assert comparison["verdict"]["ok"] is False
    (unlike,) = [r for r in comparison["verdict"]["reasons"] if "customers unlike" in r]
    assert "avg_credit_limit" in unlike and "total_visits_online" in unlike
    assert "total_calls_made" not in unlike
    population = comparison["population_psi"]
    assert population["avg_credit_limit"] > 0.25 and population["total_visits_online"] > 0.25
    assert population["total_calls_made"] < 0.1
    # Where each segment's customers go, every customer counted once.
    assert sum(flow["count"] for flow in comparison["transitions"]) == 660
    moves = [f for f in comparison["transitions"] if f["from"] != f["to"]]
    assert sum(f["count"] for f in moves) == comparison["moved"]
    assert read_latest(models_dir) == trained.version


def test_a_segment_that_ends_is_named_in_words(
    models_dir: Path, trained: TrainingResult, quick_train: Callable[..., TrainingResult]
) -> None:
    candidate = quick_train(models_dir, k=2, k_max=2)
    features = read_assignments(candidate.path / ASSIGNMENTS_FILE).features
    comparison = compare(
        ComparedVersion.load(models_dir, candidate.version),
        ComparedVersion.load(models_dir, trained.version),
        features,
        Thresholds(max_moved_share=1.0, min_adjusted_rand_index=-1.0, allow_lost_personas=True),
    )
    retired = [r for r in comparison.verdict.reasons if "would be retired" in r]
    ended = {side.segment_id for side in comparison.segments if side.name_candidate is None}
    assert len(retired) == len(ended) >= 1
    assert all("customers go to" in reason for reason in retired)
    assert comparison.verdict.ok  # every threshold was opened
    assert comparison.personas_lost


def test_compare_command_writes_both_files_and_exits_by_the_verdict(
    models_dir: Path,
    quick_train: Callable[..., TrainingResult],
    capsys: pytest.CaptureFixture[str],
) -> None:
    alike = quick_train(models_dir, seed=3, k=3, k_max=3)
    finer = quick_train(models_dir, seed=3, k=5, k_max=5)
    for version in (alike, finer):
        (version.path / COMPARISON_JSON).unlink()
        (version.path / COMPARISON_HTML).unlink()

    assert main(["compare", alike.version, "--models-dir", str(models_dir)]) == 0
    assert "switch" in capsys.readouterr().out
    assert written_comparison(alike)["verdict"]["ok"] is True
    assert (alike.path / COMPARISON_HTML).is_file()

    assert main(["compare", finer.version, "--models-dir", str(models_dir)]) == 1
    assert "do not switch" in capsys.readouterr().out
    assert written_comparison(finer)["verdict"]["ok"] is False

    opened = ["--max-moved-share", "1", "--min-adjusted-rand-index", "-1", "--allow-lost-personas"]
    assert main(["compare", finer.version, "--models-dir", str(models_dir), *opened]) == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["compare", "20200101T000000Z-00000000"], "does not exist"),
        (["compare", "../etc"], "not a valid version name"),
        (["compare", "{candidate}", "--against", "20200101T000000Z-00000000"], "does not exist"),
    ],
)
def test_compare_command_refuses_bad_versions_with_one_message(
    models_dir: Path,
    quick_train: Callable[..., TrainingResult],
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    message: str,
) -> None:
    candidate = quick_train(models_dir, seed=3, k=3, k_max=3)
    before = sorted(p.name for p in candidate.path.iterdir())
    given = [a.replace("{candidate}", candidate.version) for a in arguments]

    assert main([*given, "--models-dir", str(models_dir)]) == 2

    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    assert sorted(p.name for p in candidate.path.iterdir()) == before


def test_compare_refuses_when_there_are_no_customers(
    models_dir: Path, trained: TrainingResult
) -> None:
    version = ComparedVersion.load(models_dir, trained.version)
    with pytest.raises(ValueError, match="no customers"):
        compare(version, version, np.empty((0, 5)))


@settings(max_examples=200, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(st.sampled_from("abcd"), st.sampled_from("wxyz")), min_size=1, max_size=60
    )
)
def test_the_adjusted_rand_index_is_scikit_learns(pairs: list[tuple[str, str]]) -> None:
    before, after = zip(*pairs, strict=True)
    expected = adjusted_rand_score(before, after)
    assert adjusted_rand_index(Counter(pairs)) == pytest.approx(expected, abs=1e-12)
