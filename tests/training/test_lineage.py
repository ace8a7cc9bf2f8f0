"""Stable segment ids across retrains: ids follow the profiles, not the seed, data or playbook."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segmentation.features import FEATURES
from training.job import TrainingResult
from training.lineage import (
    PreviousModel,
    count_moves,
    inherited_ids,
    read_previous_model,
    unique_ids,
)
from training.personas import default_playbook_path

COUNTS = ["Total_Credit_Cards", "Total_visits_bank", "Total_visits_online", "Total_calls_made"]


def _previous(
    centroids: list[list[float]], ids: list[str], personas: list[str | None] | None = None
) -> PreviousModel:
    return PreviousModel(
        version="v1",
        segment_ids=ids,
        centroids=np.array(centroids, dtype=np.float64),
        scale=np.ones(len(FEATURES)),
        personas=list(ids) if personas is None else personas,
        assignments={},
    )


def _nearest_old_id(segment: dict[str, Any], old: dict[str, Any]) -> str:
    """The id of the old segment whose mean profile is closest, in the old model's units."""
    scale = old["scaler"]["scale"]

    def gap(candidate: dict[str, Any]) -> float:
        return float(
            sum(
                ((segment["profile"][f]["mean"] - candidate["profile"][f]["mean"]) / scale[f]) ** 2
                for f in FEATURES
            )
        )

    nearest: dict[str, Any] = min(old["segments"], key=gap)
    return str(nearest["segment_id"])


def _perturbed(bank_frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """5% of rows get +-1 on a random count (never below 0); 10 rows are dropped."""
    rng = np.random.default_rng(42)
    frame = bank_frame.copy()
    noisy = rng.choice(len(frame), size=len(frame) // 20, replace=False)
    for row in noisy:
        column = COUNTS[rng.integers(len(COUNTS))]
        frame.loc[row, column] = max(0, frame.loc[row, column] + rng.choice([-1, 1]))
    dropped = rng.choice(len(frame), size=10, replace=False).tolist()
    kept: pd.DataFrame = frame.drop(index=dropped)
    kept.to_csv(path, index=False)
    return kept


def _moves_between(old_dir: Path, new_dir: Path) -> tuple[int, int]:
    """(moved, compared) recomputed from the two assignments files, last record per key."""
    old, new = (
        pd.read_csv(folder / "assignments.csv", dtype=str)
        .drop_duplicates("customer_key", keep="last")
        .set_index("customer_key")["segment_id"]
        for folder in (old_dir, new_dir)
    )
    shared = old.index.intersection(new.index)
    return int((old[shared] != new[shared]).sum()), len(shared)


def assert_ids_follow_profiles(new: dict[str, Any], old: dict[str, Any]) -> None:
    assert len(new["segments"]) == len(old["segments"])
    for segment in new["segments"]:
        assert segment["segment_id"] == _nearest_old_id(segment, old)
    assert new["lineage"]["previous_version"] == old["version"]
    assert sorted(new["lineage"]["matched"]) == sorted(s["segment_id"] for s in old["segments"])


def test_unique_ids_numbers_repeated_slugs() -> None:
    assert unique_ids(["branch-loyal", "branch-loyal", "calls", "branch-loyal"], {}) == [
        "branch-loyal",
        "branch-loyal-2",
        "calls",
        "branch-loyal-3",
    ]


def test_unique_ids_keeps_inherited_ids_and_numbers_clashing_slugs() -> None:
    ids = unique_ids(["digital-affluent", "support-seeking", "new"], {1: "digital-affluent"})
    assert ids == ["digital-affluent-2", "digital-affluent", "new"]


def test_inherited_ids_pair_segments_by_nearest_centre() -> None:
    previous = _previous([[0.0] * 5, [10.0] * 5, [20.0] * 5], ["low", "mid", "high"])
    centres = np.array([[19.0] * 5, [1.0] * 5, [9.0] * 5])
    # Same k: the centres decide, whatever the personas are called now.
    renamed = ["premium", "thrifty", "middle"]
    assert inherited_ids(centres, renamed, previous) == {0: "high", 1: "low", 2: "mid"}


def test_when_k_changes_an_id_goes_only_to_the_segment_with_its_persona() -> None:
    previous = _previous([[0.0] * 5, [10.0] * 5], ["low", "high"], ["thrifty", "premium"])
    # The first new segment sits on the old "high" centre but is another persona.
    centres = np.array([[10.0] * 5, [5.0] * 5, [-1.0] * 5])
    personas = ["quiet", "premium", "thrifty"]
    assert inherited_ids(centres, personas, previous) == {1: "high", 2: "low"}
    # Without a persona (a descriptive name) a segment never inherits across k.
    assert inherited_ids(centres, [None, None, "thrifty"], previous) == {2: "low"}


def test_count_moves_compares_shared_keys_with_last_record() -> None:
    previous = PreviousModel(
        version="v1",
        segment_ids=["a", "b"],
        centroids=np.zeros((2, 5)),
        scale=np.ones(5),
        personas=["a", "b"],
        assignments={"1": "a", "2": "b", "3": "a"},
    )
    keys = np.array(["1", "2", "2", "4"], dtype=object)
    assert count_moves(previous, keys, ["a", "a", "a", "b"]) == (1, 2)


def test_read_previous_model_is_none_without_latest(tmp_path: Path) -> None:
    assert read_previous_model(tmp_path) is None


def test_read_previous_model_reads_the_active_version(
    trained: TrainingResult, trained_manifest: dict[str, Any]
) -> None:
    previous = read_previous_model(trained.path.parent)
    assert previous is not None
    assert previous.version == trained.version
    assert previous.segment_ids == [s["segment_id"] for s in trained_manifest["segments"]]
    assert len(previous.assignments) == 655  # 660 rows, 5 keys twice


def test_retrain_with_another_seed_keeps_segment_ids(
    models_dir: Path,
    trained_manifest: dict[str, Any],
    quick_train: Callable[..., TrainingResult],
) -> None:
    result = quick_train(models_dir, seed=7, k=3, k_max=3, promote=True)

    assert_ids_follow_profiles(result.manifest.to_document(), trained_manifest)
    lineage = result.manifest.lineage
    assert lineage.compared_customers == 655
    assert lineage.moved_customers <= 0.01 * lineage.compared_customers
    moves = _moves_between(models_dir / trained_manifest["version"], result.path)
    assert moves == (lineage.moved_customers, lineage.compared_customers)
    assert (models_dir / "latest").read_text().strip() == result.version
    assert (models_dir / trained_manifest["version"] / "manifest.json").exists()


def test_retrain_on_perturbed_data_keeps_segment_ids(
    models_dir: Path,
    tmp_path: Path,
    bank_frame: pd.DataFrame,
    trained_manifest: dict[str, Any],
    quick_train: Callable[..., TrainingResult],
) -> None:
    frame = _perturbed(bank_frame, tmp_path / "perturbed.csv")

    result = quick_train(models_dir, data=tmp_path / "perturbed.csv", k=3, k_max=3)

    assert result.manifest.n_rows == 650
    assert_ids_follow_profiles(result.manifest.to_document(), trained_manifest)
    lineage = result.manifest.lineage
    assert lineage.compared_customers == frame["Customer Key"].nunique()
    assert 0 <= lineage.moved_customers <= 0.05 * lineage.compared_customers
    moves = _moves_between(models_dir / trained_manifest["version"], result.path)
    assert moves == (lineage.moved_customers, lineage.compared_customers)


def test_retrain_with_renamed_persona_keeps_inherited_id(
    models_dir: Path,
    tmp_path: Path,
    trained_manifest: dict[str, Any],
    quick_train: Callable[..., TrainingResult],
) -> None:
    playbook = tmp_path / "playbook.toml"
    playbook.write_text(
        default_playbook_path()
        .read_text(encoding="utf-8")
        .replace('id = "digital-affluent"', 'id = "premium-online"'),
        encoding="utf-8",
    )
    fresh = quick_train(tmp_path / "fresh", playbook=playbook, k=3, k_max=3)
    retrained = quick_train(models_dir, playbook=playbook, k=3, k_max=3)

    def richest(manifest: dict[str, Any]) -> dict[str, Any]:
        segment: dict[str, Any] = max(
            manifest["segments"], key=lambda s: s["profile"]["avg_credit_limit"]["mean"]
        )
        return segment

    # Without a previous model the renamed persona would give the id...
    assert richest(fresh.manifest.to_document())["segment_id"] == "premium-online"
    # ...but a retrain keeps the id that the bank's systems already know.
    assert richest(retrained.manifest.to_document())["persona"] == "premium-online"
    assert richest(retrained.manifest.to_document())["segment_id"] == "digital-affluent"
    assert_ids_follow_profiles(retrained.manifest.to_document(), trained_manifest)


def test_a_retrain_with_another_k_keeps_every_id_on_its_persona(
    models_dir: Path, trained: TrainingResult, quick_train: Callable[..., TrainingResult]
) -> None:
    finer = quick_train(models_dir, k=4, k_max=4)
    coarser = quick_train(models_dir, k=2, k_max=2)
    before = {segment.segment_id: segment.persona for segment in trained.manifest.segments}
    for retrained in (finer, coarser):
        after = {segment.segment_id: segment.persona for segment in retrained.manifest.segments}
        for segment_id in before.keys() & after.keys():
            assert after[segment_id] == before[segment_id], (segment_id, retrained.manifest.k)
        # A persona kept keeps its id.
        for segment_id, persona in before.items():
            if persona is not None and persona in after.values():
                assert after.get(segment_id) == persona
