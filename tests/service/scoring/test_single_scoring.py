"""The live path's one-customer answer equals the batch path's, to the last digit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation.features import FEATURES
from service.models.active_model import ActiveModel
from service.models.model_loading import load_model
from training.job import TrainingResult


@pytest.fixture(scope="module")
def model(trained: TrainingResult) -> ActiveModel:
    return load_model(trained.path.parent, trained.version, self_test_rows=100)[0]


def assert_same_answer(model: ActiveModel, values: list[float], key: str | None) -> None:
    expected = model.assign(np.array([values]), [key])[0]
    assert model.assign_one(values, key) == expected


def test_every_bank_customer_gets_the_batch_answer(
    model: ActiveModel, training_assignments: pd.DataFrame
) -> None:
    rows = training_assignments[list(FEATURES)].to_numpy(dtype=np.float64)
    for key, values in zip(training_assignments["customer_key"], rows.tolist(), strict=True):
        assert_same_answer(model, values, key)


@settings(max_examples=500, deadline=None)
@given(
    credit=st.floats(0, 300_000, allow_nan=False),
    counts=st.lists(st.integers(0, 20), min_size=4, max_size=4),
    key=st.none() | st.text(min_size=1, max_size=8),
)
def test_random_customers_get_the_batch_answer(
    model: ActiveModel, credit: float, counts: list[int], key: str | None
) -> None:
    assert_same_answer(model, [credit, *map(float, counts)], key)


def test_customers_between_two_centres_get_the_batch_answer(model: ActiveModel) -> None:
    scorer = model.scorer
    for first, second in [(0, 1), (0, 2), (1, 2)]:
        middle = (scorer.centroids[first] + scorer.centroids[second]) / 2
        assert_same_answer(model, (middle * scorer.scale + scorer.mean).tolist(), "tied")
