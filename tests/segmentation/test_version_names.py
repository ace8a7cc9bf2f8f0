"""Version names: what may name a folder under MODELS_DIR, and what may not."""

from __future__ import annotations

import pytest

from segmentation.artifact import VERSION_NAME_MAX_LENGTH, ArtifactError, check_version_name


@pytest.mark.parametrize(
    "name", ["20261201T000000Z-d20d9222", "v1.2_rc-3", "a" * VERSION_NAME_MAX_LENGTH]
)
def test_version_names_of_safe_characters_are_accepted(name: str) -> None:
    assert check_version_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "20261201T000000Z-d20d9222\n",  # a trailing newline slipped past a `$` anchor
        "a" * (VERSION_NAME_MAX_LENGTH + 1),
        "..",
        "../models",
        ".hidden",
        "",
        "latest version",
    ],
    ids=["trailing-newline", "too-long", "dot-dot", "traversal", "hidden", "empty", "space"],
)
def test_version_names_that_could_escape_or_confuse_are_refused(name: str) -> None:
    with pytest.raises(ArtifactError) as refused:
        check_version_name(name)
    assert refused.value.code == "invalid_version_name"
    assert f"at most {VERSION_NAME_MAX_LENGTH} characters" in refused.value.message
