"""Request and response schemas of the API: validation rules and the documented shapes."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from segmentation.artifact import VERSION_NAME_MAX_LENGTH
from segmentation.features import CUSTOMER_KEY_MAX_LENGTH

MAX_CREDIT_LIMIT = 10_000_000.0
MAX_CARDS = 100
MAX_VISITS = 10_000

EXAMPLE_CUSTOMER: dict[str, Any] = {
    "customer_key": "87073",
    "avg_credit_limit": 100000,
    "total_credit_cards": 2,
    "total_visits_bank": 1,
    "total_visits_online": 1,
    "total_calls_made": 0,
}


EXAMPLE_ACTIONS: dict[str, list[str]] = {
    "marketing": ["Offer a starter limit increase after six months of on-time payments"],
    "service": ["Prioritise call-centre routing and first-call resolution"],
}
EXAMPLE_ASSIGNMENT: dict[str, Any] = {
    "customer_key": "38414",
    "segment_id": "support-seeking",
    "segment_name": "Support-seeking customers",
    "recommended_actions": EXAMPLE_ACTIONS,
    "confidence": 0.512,
    "distances": {"branch-loyal": 2.874, "support-seeking": 1.402, "digital-affluent": 4.551},
    "runner_up_segment_id": "branch-loyal",
    "atypical": False,
    "atypical_reasons": [],
    "model_version": "20261123T184512Z-d20d9222",
}
EXAMPLE_PROFILE: dict[str, dict[str, float]] = {
    "avg_credit_limit": {"mean": 12174.1, "p25": 8000.0, "median": 12000.0, "p75": 16000.0},
    "total_credit_cards": {"mean": 2.41, "p25": 1.0, "median": 2.0, "p75": 3.0},
    "total_visits_bank": {"mean": 0.93, "p25": 0.0, "median": 1.0, "p75": 2.0},
    "total_visits_online": {"mean": 3.55, "p25": 2.0, "median": 4.0, "p75": 5.0},
    "total_calls_made": {"mean": 6.87, "p25": 5.0, "median": 7.0, "p75": 9.0},
}
EXAMPLE_SEGMENT: dict[str, Any] = {
    "segment_id": "support-seeking",
    "name": "Support-seeking customers",
    "description": "Low credit limits and few cards; they call the bank often.",
    "size": 224,
    "share": 0.3394,
    "profile": EXAMPLE_PROFILE,
    "distinguishing_features": [
        {"feature": "total_calls_made", "z": 1.152, "direction": "high"},
        {"feature": "total_credit_cards", "z": -1.06, "direction": "low"},
    ],
    "recommended_actions": EXAMPLE_ACTIONS,
    "model_version": "20261123T184512Z-d20d9222",
}


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


def _key_as_text(value: object) -> object:
    """A customer key may come as a string or an integer; it is always answered as text."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise PydanticCustomError(
            "customer_key_type", "customer_key must be a string or an integer"
        )
    return str(value).strip()


def _whole_number(value: object) -> object:
    """Counts arrive as JSON numbers: 2 and 2.0 are two, 2.5 and "2" are not counts."""
    if isinstance(value, float) and math.isfinite(value):
        if not value.is_integer():
            raise PydanticCustomError(
                "whole_number", "Input should be a whole number, got {value}", {"value": value}
            )
        return int(value)
    return value


CustomerKey = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=CUSTOMER_KEY_MAX_LENGTH, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
    BeforeValidator(_key_as_text),
    # What a client may send (the validators above see it after the integer became text
    # and the surrounding blanks were stripped).
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 64,
                    "pattern": r"^\s*[^\x00-\x1f\x7f\s][^\x00-\x1f\x7f]*$",
                },
                {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
            ],
            "description": "A string or an integer; answered as a string.",
        }
    ),
]


# The bounds come before the validator: after it, pydantic would document them under its
# own names (ge, le) instead of JSON Schema's minimum and maximum.
CardCount = Annotated[int, Field(strict=True, ge=0, le=MAX_CARDS), BeforeValidator(_whole_number)]
VisitCount = Annotated[int, Field(strict=True, ge=0, le=MAX_VISITS), BeforeValidator(_whole_number)]


class CustomerFeatures(BaseModel):
    """One customer's behaviour over the last year, as the bank records it."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [EXAMPLE_CUSTOMER]}
    )

    customer_key: CustomerKey | None = Field(
        default=None, description="The bank's customer key, when the customer is known."
    )
    avg_credit_limit: float = Field(
        strict=True,
        gt=0,
        le=MAX_CREDIT_LIMIT,
        allow_inf_nan=False,
        description="Average credit limit across the customer's cards.",
    )
    total_credit_cards: CardCount = Field(description="Number of credit cards held.")
    total_visits_bank: VisitCount = Field(description="Branch visits per year.")
    total_visits_online: VisitCount = Field(description="Online logins per year.")
    total_calls_made: VisitCount = Field(description="Calls to the bank per year.")


class CustomerReference(BaseModel):
    """An existing customer, by key only: answered from the customer store."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    customer_key: CustomerKey


class RecommendedActions(BaseModel):
    marketing: list[str]
    service: list[str]


class SegmentAssignment(BaseModel):
    """Which segment a customer belongs to, how clearly, and what to do about it."""

    model_config = _examples(EXAMPLE_ASSIGNMENT)

    customer_key: str | None
    segment_id: str = Field(description="Stable slug of the segment.")
    segment_name: str
    recommended_actions: RecommendedActions
    confidence: float = Field(
        ge=0, le=1, description="1 - nearest distance / runner-up distance: 0 is a coin toss."
    )
    distances: dict[str, float] = Field(
        description="Distance to every segment centre, in standard deviations."
    )
    runner_up_segment_id: str
    atypical: bool = Field(description="Outside what the model saw in training.")
    atypical_reasons: list[str]
    model_version: str
    recorded: bool | None = Field(
        default=None, description="Whether the customer store recorded the answer."
    )


class ErrorDetail(BaseModel):
    field: str | None = None
    rule: str
    message: str


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    """The one shape of every error."""

    model_config = _examples(
        {
            "error": {
                "code": "invalid_input",
                "message": "the customer is invalid: total_credit_cards",
                "details": [
                    {
                        "field": "total_credit_cards",
                        "rule": "whole_number",
                        "message": "Input should be a whole number, got 2.5",
                    }
                ],
            }
        }
    )

    error: ErrorInfo


class BatchRequest(BaseModel):
    """Many customers at once; each is validated and scored on its own."""

    customers: list[dict[str, Any]] = Field(
        description="Items shaped like the single-customer request."
    )

    model_config = ConfigDict(json_schema_extra={"examples": [{"customers": [EXAMPLE_CUSTOMER]}]})


class BatchItemResult(BaseModel):
    """An assignment's fields, or an error for that item; ``index`` is its input position."""

    model_config = ConfigDict(extra="allow")

    index: int
    customer_key: str | None = None
    segment_id: str | None = None
    error: ErrorInfo | None = None


class BatchResponse(BaseModel):
    model_config = _examples(
        {
            "model_version": "20261123T184512Z-d20d9222",
            "counts": {"branch-loyal": 0, "support-seeking": 1, "digital-affluent": 0},
            "n_errors": 1,
            "results": [
                {"index": 0, **EXAMPLE_ASSIGNMENT},
                {
                    "index": 1,
                    "customer_key": None,
                    "error": {
                        "code": "invalid_input",
                        "message": "customer 1 is invalid: avg_credit_limit",
                        "details": [
                            {
                                "field": "avg_credit_limit",
                                "rule": "greater_than",
                                "message": "Input should be greater than 0",
                            }
                        ],
                    },
                },
            ],
        }
    )

    model_version: str
    counts: dict[str, int] = Field(description="Scored customers per segment.")
    n_errors: int
    results: list[BatchItemResult]


class FeatureSummary(BaseModel):
    mean: float
    p25: float
    median: float
    p75: float


class DistinguishingFeature(BaseModel):
    feature: str
    z: float
    direction: Literal["high", "low"]


class Segment(BaseModel):
    """What a segment is, how big it is and what to do about it."""

    model_config = _examples(EXAMPLE_SEGMENT)

    segment_id: str
    name: str
    description: str
    size: int
    share: float
    profile: dict[str, FeatureSummary]
    distinguishing_features: list[DistinguishingFeature]
    recommended_actions: RecommendedActions
    model_version: str
    live_size: int | None = Field(
        default=None, description="Customers whose latest stored assignment is this segment."
    )


class SegmentCatalog(BaseModel):
    model_config = _examples(
        {"model_version": "20261123T184512Z-d20d9222", "segments": [EXAMPLE_SEGMENT]}
    )

    model_version: str
    segments: list[Segment]


class HistoryEntry(BaseModel):
    segment_id: str
    model_version: str
    source: Literal["training", "single", "batch"]
    assigned_at: datetime


class CustomerRecord(BaseModel):
    """A known customer's latest assignment, and every earlier one, newest first."""

    model_config = _examples(
        {
            "customer_key": "38414",
            "segment_id": "support-seeking",
            "segment_name": "Support-seeking customers",
            "recommended_actions": EXAMPLE_ACTIONS,
            "confidence": 0.512,
            "atypical": False,
            "model_version": "20261123T184512Z-d20d9222",
            "source": "single",
            "assigned_at": "2026-11-23T19:02:41.120331Z",
            "features": {
                "avg_credit_limit": 50000.0,
                "total_credit_cards": 3,
                "total_visits_bank": 0,
                "total_visits_online": 10,
                "total_calls_made": 9,
            },
            "history": [
                {
                    "segment_id": "support-seeking",
                    "model_version": "20261123T184512Z-d20d9222",
                    "source": "single",
                    "assigned_at": "2026-11-23T19:02:41.120331Z",
                },
                {
                    "segment_id": "support-seeking",
                    "model_version": "20261123T184512Z-d20d9222",
                    "source": "training",
                    "assigned_at": "2026-11-23T18:46:02.554810Z",
                },
            ],
        }
    )

    customer_key: str
    segment_id: str
    segment_name: str | None = Field(description="None when the active model lacks the segment.")
    recommended_actions: RecommendedActions | None
    confidence: float
    atypical: bool
    model_version: str = Field(description="The model that made this assignment.")
    source: Literal["training", "single", "batch"]
    assigned_at: datetime
    features: dict[str, float] = Field(description="As given; the counts as whole numbers.")
    history: list[HistoryEntry]


class SegmentMember(BaseModel):
    customer_key: str
    segment_id: str
    model_version: str
    avg_credit_limit: float
    total_credit_cards: int
    total_visits_bank: int
    total_visits_online: int
    total_calls_made: int
    confidence: float
    atypical: bool
    source: Literal["training", "single", "batch"]
    assigned_at: datetime


class SegmentMembers(BaseModel):
    """One page of a segment's customers; follow ``next_cursor`` until it is null."""

    customers: list[SegmentMember]
    next_cursor: str | None


class ModelSummary(BaseModel):
    model_config = _examples(
        {
            "model_version": "20261123T184512Z-d20d9222",
            "created_at": "2026-11-23T18:45:12Z",
            "k": 3,
            "n_rows": 660,
            "features": list(EXAMPLE_PROFILE),
            "data_sha256": "d20d9222771134f858148bea1a144615a874e98551cf12f445ec83c217e91a83",
            "metrics": {"selection": "silhouette", "silhouette": 0.5157, "knee_k": 3},
            "libraries": {"scikit-learn": "1.9.1", "numpy": "2.4.6"},
            "segments": ["branch-loyal", "support-seeking", "digital-affluent"],
            "signed": False,
        }
    )

    model_version: str
    created_at: str
    k: int
    n_rows: int
    features: list[str]
    data_sha256: str
    metrics: dict[str, Any]
    libraries: dict[str, str]
    segments: list[str]
    signed: bool


class Health(BaseModel):
    model_config = _examples({"status": "ok"})

    status: Literal["ok"]


class Readiness(BaseModel):
    """``degraded``: answering, but the customer store is unreachable."""

    model_config = _examples(
        {"status": "ready", "model_version": "20261123T184512Z-d20d9222", "reason": None},
        {
            "status": "not_ready",
            "model_version": None,
            "reason": "hash_mismatch: pipeline.joblib does not match the sha256 recorded",
        },
    )

    status: Literal["ready", "degraded", "not_ready"]
    model_version: str | None
    reason: str | None = None
    store: str | None = Field(default=None, description="ok, or why the store is unavailable.")


class ReloadRequest(BaseModel):
    """Which version to serve; without one, the version that `latest` names."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"version": "20261123T184512Z-d20d9222"}]}
    )

    version: str | None = Field(
        default=None,
        min_length=1,
        max_length=VERSION_NAME_MAX_LENGTH,
        description="A version name under MODELS_DIR.",
    )


class ReloadResult(BaseModel):
    model_config = _examples(
        {
            "model_version": "20261124T090000Z-d20d9222",
            "previous_version": "20261123T184512Z-d20d9222",
        }
    )

    model_version: str = Field(description="The version now served (and named by `latest`).")
    previous_version: str | None = Field(description="The version served before, if any.")
