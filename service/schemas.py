"""Request and response schemas of the API: validation rules and the documented shapes."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

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
    StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$"),
    BeforeValidator(_key_as_text),
]
Count = Annotated[int, BeforeValidator(_whole_number), Field(strict=True, ge=0)]


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
    total_credit_cards: Annotated[Count, Field(le=MAX_CARDS)] = Field(
        description="Number of credit cards held."
    )
    total_visits_bank: Annotated[Count, Field(le=MAX_VISITS)] = Field(
        description="Branch visits per year."
    )
    total_visits_online: Annotated[Count, Field(le=MAX_VISITS)] = Field(
        description="Online logins per year."
    )
    total_calls_made: Annotated[Count, Field(le=MAX_VISITS)] = Field(
        description="Calls to the bank per year."
    )


class RecommendedActions(BaseModel):
    marketing: list[str]
    service: list[str]


class SegmentAssignment(BaseModel):
    """Which segment a customer belongs to, how clearly, and what to do about it."""

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

    segment_id: str
    name: str
    description: str
    size: int
    share: float
    profile: dict[str, FeatureSummary]
    distinguishing_features: list[DistinguishingFeature]
    recommended_actions: RecommendedActions
    model_version: str


class SegmentCatalog(BaseModel):
    model_version: str
    segments: list[Segment]


class CustomerRecord(SegmentAssignment):
    """A known customer's latest assignment."""

    source: str = Field(description="Where the assignment comes from: training, single or batch.")
    assigned_at: datetime | None = None


class ModelSummary(BaseModel):
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
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    model_version: str | None
    reason: str | None = None
