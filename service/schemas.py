"""Request and response schemas of the API: validation rules and the documented shapes."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from segmentation.artifact import VERSION_NAME_MAX_LENGTH, VERSION_NAME_PATTERN
from segmentation.features import (
    CUSTOMER_KEY_MAX_LENGTH,
    CUSTOMER_KEY_PATTERN,
    FEATURES,
    SENT_CUSTOMER_KEY_PATTERN,
)
from service import schema_examples as examples

MAX_CREDIT_LIMIT = 10_000_000.0
MAX_CARDS = 100
MAX_VISITS = 10_000


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


KEY_INTEGER_RANGE = (-(2**53 - 1), 2**53 - 1)
"""Integer customer keys the API takes: JSON's safe integers, which every JSON tool (and
the API document's own bounds) holds exactly; a longer key is sent as text."""


def _key_as_text(value: object) -> object:
    """A customer key may come as a string or an integer; it is always answered as text."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 1e3 is an integer to JSON Schema
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise PydanticCustomError(
            "customer_key_type", "customer_key must be a string or an integer"
        )
    if isinstance(value, int) and not KEY_INTEGER_RANGE[0] <= value <= KEY_INTEGER_RANGE[1]:
        raise PydanticCustomError(
            "customer_key_range",
            "an integer customer_key must be within ±(2**53 - 1); send a longer one as text",
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
        min_length=1, max_length=CUSTOMER_KEY_MAX_LENGTH, pattern=CUSTOMER_KEY_PATTERN
    ),
    BeforeValidator(_key_as_text),
    # What a client may send (the validators above see it after the integer became text
    # and the surrounding blanks were stripped).
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": SENT_CUSTOMER_KEY_PATTERN},
                {
                    "type": "integer",
                    "minimum": KEY_INTEGER_RANGE[0],
                    "maximum": KEY_INTEGER_RANGE[1],
                },
            ],
            "description": "A string or an integer; answered as a string.",
        }
    ),
]


# The bounds come before the validator: after it, pydantic would document them under its
# own names (ge, le) instead of JSON Schema's minimum and maximum.
CardCount = Annotated[int, Field(strict=True, ge=0, le=MAX_CARDS), BeforeValidator(_whole_number)]
VisitCount = Annotated[int, Field(strict=True, ge=0, le=MAX_VISITS), BeforeValidator(_whole_number)]


VersionName = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=VERSION_NAME_MAX_LENGTH, pattern=VERSION_NAME_PATTERN
    ),
]
"""A version's folder name: letters, digits, '.', '_' and '-', starting with a letter or digit."""

CreditLimit = Annotated[float, Field(strict=True, gt=0, le=MAX_CREDIT_LIMIT, allow_inf_nan=False)]


class CustomerFeatures(BaseModel):
    """One customer's behaviour over the last year, as the bank records it."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [examples.CUSTOMER]}
    )

    customer_key: CustomerKey | None = Field(
        default=None, description="The bank's customer key, when the customer is known."
    )
    avg_credit_limit: CreditLimit = Field(
        description="Average credit limit across the customer's cards."
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

    model_config = _examples(examples.ASSIGNMENT)

    customer_key: str | None
    segment_id: str = Field(description="Stable slug of the segment.")
    segment_name: str
    segment_description: str = Field(description="The segment in one line, to read out.")
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
    atypical_explanations: list[str] = Field(
        description="Each atypical reason as a sentence, with the customer's numbers."
    )
    model_version: str
    recorded: bool | None = Field(
        default=None, description="Whether the customer store recorded the answer."
    )
    recording_unknown: bool | None = Field(
        default=None,
        description="Present (true) with `recorded: false` when the store stopped answering "
        "after the row was sent: it may yet be kept. Sending the call again is safe.",
    )


FeatureName = Literal[
    "avg_credit_limit",
    "total_credit_cards",
    "total_visits_bank",
    "total_visits_online",
    "total_calls_made",
]
assert FeatureName.__args__ == FEATURES  # type: ignore[attr-defined]


def _once_each(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


class MoveRequest(BaseModel):
    """A customer (five features, or a known customer's key alone) and, optionally, the
    segment to reach and the features that cannot change."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [examples.MOVE_REQUEST],
            # All five features, or none and a key: what the document can say of it.
            "dependentRequired": {
                name: [other for other in FEATURES if other != name] for name in FEATURES
            },
            "anyOf": [
                {
                    "required": ["customer_key"],
                    "properties": {"customer_key": {"not": {"type": "null"}}},
                },
                {"required": list(FEATURES)},
            ],
        },
    )

    customer_key: CustomerKey | None = Field(
        default=None,
        description="The bank's customer key; alone, the stored customer is used.",
    )
    # Left out when the key stands for the customer; never null.
    avg_credit_limit: CreditLimit | SkipJsonSchema[None] = None
    total_credit_cards: CardCount | SkipJsonSchema[None] = None
    total_visits_bank: VisitCount | SkipJsonSchema[None] = None
    total_visits_online: VisitCount | SkipJsonSchema[None] = None
    total_calls_made: VisitCount | SkipJsonSchema[None] = None
    target_segment: str | None = Field(
        default=None,
        max_length=64,
        description="The segment to reach; without it, every other segment.",
    )
    fixed: Annotated[list[FeatureName], AfterValidator(_once_each)] = Field(
        default_factory=list,
        max_length=len(FEATURES),
        description="Features that cannot change (the credit limit changes only through "
        "the bank's own offer).",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_null_features(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in FEATURES:
                if name in data and data[name] is None:
                    raise PydanticCustomError(
                        "null_feature", "{name} may be left out, not null", {"name": name}
                    )
        return data


class Move(BaseModel):
    """The smallest change that puts the customer in segment ``segment_id``, or why none can."""

    segment_id: str = Field(description="The segment this move reaches (or cannot reach).")
    segment_name: str
    reachable: bool
    reason: str | None = Field(default=None, description="Why not, when unreachable.")
    values: dict[str, float] | None = Field(
        default=None, description="The changed customer, in the bank's units."
    )
    changes: dict[str, float] | None = Field(
        default=None, description="The change of each feature that changes."
    )
    effort: float | None = Field(
        default=None, description="The length of the change, in standard deviations."
    )
    confidence: float | None = Field(
        default=None,
        description="The changed customer's confidence in the segment: low, as the smallest "
        "change stops just inside it.",
    )
    recommended_actions: RecommendedActions | None = None


class CustomerMoves(BaseModel):
    """Where the customer is, and the smallest change to each segment asked for."""

    model_config = _examples(examples.MOVES)

    customer_key: str | None
    model_version: str
    segment_id: str
    segment_name: str
    confidence: float
    fixed: list[str]
    moves: list[Move] = Field(description="The cheapest first; unreachable segments last.")


class Prospect(BaseModel):
    """A known customer of another segment, and the smallest change that would bring them in."""

    customer_key: str
    segment_id: str = Field(description="The customer's segment now.")
    effort: float
    values: dict[str, float]
    changes: dict[str, float]


class SegmentProspects(BaseModel):
    segment_id: str
    model_version: str
    prospects: list[Prospect] = Field(description="Least effort first.")
    next_cursor: str | None


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

    model_config = _examples(examples.ERROR_RESPONSE)

    error: ErrorInfo


class BatchRequest(BaseModel):
    """Many customers at once; each is validated and scored on its own."""

    customers: list[Any] = Field(
        description="Items shaped like the single-customer request (or a known customer's "
        "customer_key alone); an item that is not one gets an error of its own."
    )

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [examples.BATCH_REQUEST]}
    )


class BatchItemResult(BaseModel):
    """An assignment's fields, or an error for that item; ``index`` is its input position."""

    model_config = ConfigDict(extra="allow")

    index: int
    customer_key: str | None = None
    segment_id: str | None = None
    error: ErrorInfo | None = None


class BatchResponse(BaseModel):
    model_config = _examples(examples.BATCH_RESPONSE)

    model_version: str
    counts: dict[str, int] = Field(description="Scored customers per segment.")
    n_errors: int
    results: list[BatchItemResult]


class SegmentActions(BaseModel):
    segment_name: str
    segment_description: str
    recommended_actions: RecommendedActions


class BatchColumns(BaseModel):
    """One list per field, one entry per scored customer, in input order."""

    index: list[int]
    customer_key: list[str | None]
    segment_id: list[str]
    confidence: list[float]
    distances: dict[str, list[float]] = Field(description="One list per segment.")
    runner_up_segment_id: list[str]
    atypical: list[bool]
    atypical_reasons: list[list[str]]
    atypical_explanations: list[list[str]]
    recorded: list[bool | None] | None = Field(
        default=None, description="Present when some customer has a key; null where none."
    )
    recording_unknown: list[bool | None] | None = None


class ColumnarBatchResponse(BaseModel):
    """``POST /segment/batch?layout=columns``: the row answer's values as columns."""

    model_version: str
    counts: dict[str, int] = Field(description="Scored customers per segment.")
    n_errors: int
    size: int = Field(description="Items in the request, scored or not.")
    segments: dict[str, SegmentActions]
    columns: BatchColumns
    errors: list[BatchItemResult] = Field(description="The items that were not scored.")


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

    model_config = _examples(examples.SEGMENT)

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
        default=None,
        description="Customers whose latest stored assignment the active model made, in this "
        "segment (null while the store is unavailable).",
    )


class SegmentCatalog(BaseModel):
    model_config = _examples(examples.SEGMENT_CATALOG)

    model_version: str
    segments: list[Segment]


Source = Literal["training", "single", "batch", "rescore"]
"""Where an assignment came from: the model's training snapshot, a single or a batch
request, or the store's rescoring after a switch of model."""


class HistoryEntry(BaseModel):
    segment_id: str
    model_version: str
    source: Source
    assigned_at: datetime


class CustomerRecord(BaseModel):
    """A known customer's latest assignment, and every earlier one, newest first."""

    model_config = _examples(examples.CUSTOMER_RECORD)

    customer_key: str
    segment_id: str
    segment_name: str | None = Field(description="None when the active model lacks the segment.")
    recommended_actions: RecommendedActions | None
    confidence: float
    atypical: bool
    model_version: str = Field(description="The model that made this assignment.")
    current: bool = Field(
        description="Whether the active model made it: false only for a customer the store's "
        "rescoring after a switch of model has not reached yet."
    )
    source: Source
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
    source: Source
    assigned_at: datetime


class SegmentMembers(BaseModel):
    """One page of a segment's customers; follow ``next_cursor`` until it is null."""

    customers: list[SegmentMember]
    next_cursor: str | None


class ModelSummary(BaseModel):
    model_config = _examples(examples.MODEL_SUMMARY)

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
    model_config = _examples(examples.HEALTH)

    status: Literal["ok"]


class RescoringProgress(BaseModel):
    version: str = Field(description="The active version the customers are rescored with.")
    state: Literal["running", "finished"]
    rescored: int = Field(description="Customers rescored since the run started.")
    remaining: int = Field(description="Customers another version assigned last.")
    started_at: str
    finished_at: str | None


class Readiness(BaseModel):
    """``degraded``: answering, but the customer store, or the Redis that shares the rate
    limits, is unreachable."""

    model_config = _examples(examples.READY, examples.NOT_READY)

    status: Literal["ready", "degraded", "not_ready"]
    model_version: str | None
    reason: str | None = None
    store: str | None = Field(default=None, description="ok, or why the store is unavailable.")
    rescoring: RescoringProgress | None = Field(
        default=None,
        description="The store's rescoring to the active model after a switch (null when none "
        "was needed since the service started).",
    )
    rate_limits: str | None = Field(
        default=None,
        description="How clients' requests are counted: null without RATE_LIMIT_PER_MINUTE, "
        "'per process', 'shared' (in Redis, across every worker and replica), or 'per "
        "process: Redis is unreachable (...)' while REDIS_URL is set but Redis does not "
        "answer (then the status is degraded).",
    )


class ReloadRequest(BaseModel):
    """Which version to serve; without one, the version that `latest` names."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [examples.RELOAD_REQUEST]}
    )

    version: VersionName | None = Field(
        default=None, description="A version name under MODELS_DIR."
    )


class ReloadResult(BaseModel):
    model_config = _examples(examples.RELOAD_RESULT)

    model_version: str = Field(description="The version now served (and named by `latest`).")
    previous_version: str | None = Field(description="The version served before, if any.")


REASON_MAX_LENGTH = 1_000
"""Characters in a lifecycle reason at most: it goes into the version history as given."""


class LifecycleRequest(BaseModel):
    """A version and why: the reason is kept in the version's history."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [examples.PROMOTE_REQUEST]}
    )

    version: VersionName = Field(description="A version under MODELS_DIR.")
    reason: str = Field(
        min_length=1,
        max_length=REASON_MAX_LENGTH,
        # Something besides blanks (Python's: separators such as U+001F count as blank).
        pattern=r"[^\s\x1c-\x1f\x85]",
        description="Why: it goes on record, so it may not be blank.",
    )


class RejectResult(BaseModel):
    model_version: str
    status: Literal["rejected"]


class VersionTransition(BaseModel):
    status: Literal["candidate", "active", "retired", "rejected"]
    at: str = Field(description="When, ISO 8601 in UTC.")
    by: str = Field(description="The API client or the command that made the change.")
    reason: str


class VersionEntry(BaseModel):
    version: str
    status: Literal["candidate", "active", "retired", "rejected"]
    created_at: str | None
    n_rows: int | None
    k: int | None
    silhouette: float | None
    history: list[VersionTransition] = Field(description="Oldest first.")
    problem: str | None = Field(
        default=None, description="Why the version's manifest cannot be read, if it cannot."
    )


class ModelVersions(BaseModel):
    model_config = _examples(examples.MODEL_VERSIONS)

    active: str | None = Field(description="The version `latest` names.")
    shadow: str | None = Field(description="The version scoring live traffic in the shadow.")
    versions: list[VersionEntry] = Field(description="Newest first.")


class Transition(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_segment: str = Field(alias="from", description="The segment under the version now.")
    to_segment: str = Field(alias="to", description="The segment under the candidate.")
    count: int


class ComparisonVerdict(BaseModel):
    ok: bool = Field(description="Whether every check passed: switch.")
    reasons: list[str] = Field(description="One sentence per check, then what changes.")


class ComparedCustomers(BaseModel):
    training: int = Field(description="The candidate's training customers.")
    store_only: int | None = Field(
        description="Customers the store knows that training did not have (null: store down)."
    )
    store_available: bool
    store_capped: bool = Field(
        description="The store knows more customers than a comparison takes (200,000)."
    )


class ComparisonReport(BaseModel):
    """Two versions on the same customers: who would move where, and whether to switch."""

    model_config = ConfigDict(extra="allow")

    candidate: str
    against: str
    n_customers: int
    moved: int
    moved_share: float
    adjusted_rand_index: float
    transitions: list[Transition] = Field(description="Every (from, to) pair, largest first.")
    personas_gained: list[str]
    personas_lost: list[str]
    verdict: ComparisonVerdict
    customers: ComparedCustomers


class DriftFigure(BaseModel):
    psi: float | None = Field(description="Population stability index; null when insufficient.")
    band: Literal["ok", "watch", "act", "insufficient"]


class DriftWindowFacts(BaseModel):
    customers: int = Field(description="Customers in the window (the newest, all workers).")
    size: int = Field(description="DRIFT_WINDOW: the most customers the window keeps.")
    since: str | None = Field(description="When the oldest customer in it was scored (UTC).")


class DriftReport(BaseModel):
    model_version: str
    window: DriftWindowFacts
    features: dict[str, DriftFigure]
    segment_mix: DriftFigure
    atypical_share: float | None
    atypical_by_reason: dict[str, float] | None = Field(
        description="The share of the window's customers with each atypical reason code "
        "(one customer may have several); null for an empty window or no baseline."
    )
    retrain_recommended: bool
    reasons: list[str]


class ShadowRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: VersionName = Field(description="A version under MODELS_DIR.")


class ShadowReport(BaseModel):
    version: str | None = Field(description="The shadow version (null: none was started).")
    started_at: str | None
    stopped: str | None = Field(description="Why the shadow no longer runs; null while it does.")
    requests: int
    customers: int
    agreement: float | None = Field(
        description="Share of customers the shadow assigned to the same segment."
    )
    transitions: list[Transition] = Field(description="(active, shadow) pairs, largest first.")
