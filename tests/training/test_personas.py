"""Naming segments: persona fit, one-to-one matching, descriptive fallbacks, playbook checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from segmentation.features import FEATURES
from training.personas import (
    InvalidPlaybook,
    Persona,
    Playbook,
    default_playbook_path,
    load_playbook,
    name_segments,
)

GENERIC = """
[generic]
description = "No persona fits."
marketing = ["Survey them"]
service = ["Standard service"]
"""
AFFLUENT = """
[[persona]]
id = "digital-affluent"
name = "Affluent digital customers"
description = "Rich and online."
marketing = ["Premium card"]
service = ["App first"]
[persona.signature]
avg_credit_limit = "high"
total_visits_online = "high"
"""
# Standardised centres shaped like the bank's three groups (features in FEATURES order).
Z_AFFLUENT = [2.8, 1.9, -1.1, 2.9, -0.9]
Z_SUPPORT = [-0.6, -1.1, -0.9, 0.3, 1.2]
Z_BRANCH = [0.0, 0.4, 0.7, -0.6, -0.6]


def _z(**values: float) -> npt.NDArray[np.float64]:
    return np.array([values.get(feature, 0.0) for feature in FEATURES])


def _persona(**signature: str) -> Persona:
    return Persona(
        id="p", name="P", description="d", marketing=("m",), service=("s",), signature=signature
    )


def _playbook(tmp_path: Path, text: str) -> Playbook:
    path = tmp_path / "playbook.toml"
    path.write_text(text, encoding="utf-8")
    return load_playbook(path)


def test_persona_fit_is_mean_signed_agreement() -> None:
    persona = _persona(avg_credit_limit="high", total_calls_made="low")
    assert persona.fit(_z(avg_credit_limit=1.0, total_calls_made=-1.5)) == pytest.approx(1.25)
    assert persona.fit(_z(avg_credit_limit=-1.0, total_calls_made=1.0)) == pytest.approx(-1.0)


def test_persona_fit_clips_extreme_features() -> None:
    persona = _persona(avg_credit_limit="high", total_calls_made="low")
    # A limit 6 standard deviations high counts as 2: it cannot outvote the calls.
    assert persona.fit(_z(avg_credit_limit=6.0, total_calls_made=0.5)) == pytest.approx(0.75)


def test_persona_fit_rewards_average_only_near_zero() -> None:
    persona = _persona(total_visits_bank="average")
    assert persona.fit(_z(total_visits_bank=0.0)) == 0.0
    assert persona.fit(_z(total_visits_bank=0.8)) == pytest.approx(-0.8)
    assert persona.fit(_z(total_visits_bank=-0.8)) == pytest.approx(-0.8)


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1), (1, 2, 0)])
def test_name_segments_matches_bank_groups_whatever_label_order(
    order: tuple[int, int, int],
) -> None:
    groups = [Z_AFFLUENT, Z_SUPPORT, Z_BRANCH]
    expected = ["digital-affluent", "support-seeking", "branch-loyal"]
    namings = name_segments(np.array([groups[i] for i in order]), load_playbook())
    assert [naming.persona for naming in namings] == [expected[i] for i in order]
    assert all(naming.fit >= 0.3 for naming in namings)


def test_name_segments_falls_back_to_descriptive_name_when_personas_run_out(
    tmp_path: Path,
) -> None:
    playbook = _playbook(tmp_path, GENERIC + AFFLUENT)

    namings = name_segments(np.array([Z_SUPPORT, Z_AFFLUENT, Z_BRANCH]), playbook)

    assert namings[1].slug == namings[1].persona == "digital-affluent"
    support, branch = namings[0], namings[2]
    assert support.persona is None
    assert support.slug == "high-calls-low-cards-low-branch-visits"
    assert support.name == "High calls to the bank, low credit cards held, low branch visits"
    assert branch.slug == "high-branch-visits-low-online-logins-low-calls"
    for naming in (support, branch):
        assert naming.description == "No persona fits."
        assert naming.recommended_actions() == {
            "marketing": ["Survey them"],
            "service": ["Standard service"],
        }


def test_name_segments_calls_featureless_centre_average_customers() -> None:
    namings = name_segments(
        np.array([_z(), _z(avg_credit_limit=0.3, total_calls_made=-0.2)]), load_playbook()
    )
    for naming in namings:
        assert (naming.slug, naming.name, naming.persona) == (
            "average-customers",
            "Average customers",
            None,
        )
        assert naming.fit < 0.3
        assert naming.marketing == load_playbook().generic_marketing


def test_name_segments_refuses_weak_fit_below_min_fit(tmp_path: Path) -> None:
    playbook = _playbook(tmp_path, "min_fit = 0.5\n" + GENERIC + AFFLUENT)

    weak = name_segments(np.array([_z(avg_credit_limit=0.6, total_visits_online=0.2)]), playbook)
    strong = name_segments(np.array([_z(avg_credit_limit=0.6, total_visits_online=0.6)]), playbook)

    assert weak[0].persona is None
    assert weak[0].slug == "high-credit-limit"
    assert weak[0].fit == pytest.approx(0.4)
    assert strong[0].persona == "digital-affluent"


def test_bundled_playbook_loads_every_persona() -> None:
    playbook = load_playbook()
    assert playbook.source == str(default_playbook_path())
    assert playbook.min_fit == 0.3
    assert [persona.id for persona in playbook.personas] == [
        "digital-affluent",
        "support-seeking",
        "branch-loyal",
        "quiet-low-engagement",
        "multi-card-high-limit",
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (GENERIC, "defines no [[persona]]"),
        (AFFLUENT, "needs a [generic] table"),
        (GENERIC + AFFLUENT + AFFLUENT, "persona ids repeat"),
        (
            GENERIC + AFFLUENT.replace('"digital-affluent"', '"Digital Affluent"'),
            "'digital-affluent'",
        ),
        (
            GENERIC + AFFLUENT.replace('= "high"', '= "very high"', 1),
            "should be high, low or average",
        ),
        (GENERIC + AFFLUENT.replace('= "high"', '= ["high"]', 1), "should be high, low or average"),
        (GENERIC + AFFLUENT.replace('marketing = ["Premium card"]', ""), "marketing must be"),
        ('persona = "everyone"\n' + GENERIC, "persona must be [[persona]] tables"),
        ('min_fit = "strict"\n' + GENERIC + AFFLUENT, "min_fit='strict' should be a number"),
        ("min_fit = [\n", "not valid TOML"),
    ],
    ids=[
        "no_persona",
        "no_generic",
        "repeated_id",
        "id_not_slug",
        "unknown_direction",
        "direction_not_text",
        "no_marketing",
        "persona_not_table",
        "min_fit_not_number",
        "not_toml",
    ],
)
def test_load_playbook_refuses_malformed_file(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(InvalidPlaybook) as raised:
        _playbook(tmp_path, text)
    assert says in str(raised.value)


def test_load_playbook_refuses_unreadable_file(tmp_path: Path) -> None:
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidPlaybook, match=r"binary\.toml: cannot be read"):
        load_playbook(binary)
    with pytest.raises(InvalidPlaybook, match="cannot be read"):
        load_playbook(tmp_path)
