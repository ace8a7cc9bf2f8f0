"""Examples for the OpenAPI document: what each request and answer looks like.

Kept apart from the schemas in :mod:`service.schemas`, which say what is valid. They are
illustrations only: nothing reads them but the documentation.
"""

from __future__ import annotations

from typing import Any

CUSTOMER: dict[str, Any] = {
    "customer_key": "87073",
    "avg_credit_limit": 100000,
    "total_credit_cards": 2,
    "total_visits_bank": 1,
    "total_visits_online": 1,
    "total_calls_made": 0,
}


ACTIONS: dict[str, list[str]] = {
    "marketing": ["Offer a starter limit increase after six months of on-time payments"],
    "service": ["Prioritise call-centre routing and first-call resolution"],
}
ASSIGNMENT: dict[str, Any] = {
    "customer_key": "38414",
    "segment_id": "support-seeking",
    "segment_name": "Support-seeking customers",
    "segment_description": "Low credit limits and few cards; they call the bank often.",
    "recommended_actions": ACTIONS,
    "confidence": 0.512,
    "distances": {"branch-loyal": 2.874, "support-seeking": 1.402, "digital-affluent": 4.551},
    "runner_up_segment_id": "branch-loyal",
    "atypical": False,
    "atypical_reasons": [],
    "atypical_explanations": [],
    "model_version": "20261123T184512Z-d20d9222",
}
PROFILE: dict[str, dict[str, float]] = {
    "avg_credit_limit": {"mean": 12174.1, "p25": 8000.0, "median": 12000.0, "p75": 16000.0},
    "total_credit_cards": {"mean": 2.41, "p25": 1.0, "median": 2.0, "p75": 3.0},
    "total_visits_bank": {"mean": 0.93, "p25": 0.0, "median": 1.0, "p75": 2.0},
    "total_visits_online": {"mean": 3.55, "p25": 2.0, "median": 4.0, "p75": 5.0},
    "total_calls_made": {"mean": 6.87, "p25": 5.0, "median": 7.0, "p75": 9.0},
}
SEGMENT: dict[str, Any] = {
    "segment_id": "support-seeking",
    "name": "Support-seeking customers",
    "description": "Low credit limits and few cards; they call the bank often.",
    "size": 224,
    "share": 0.3394,
    "profile": PROFILE,
    "distinguishing_features": [
        {"feature": "total_calls_made", "z": 1.152, "direction": "high"},
        {"feature": "total_credit_cards", "z": -1.06, "direction": "low"},
    ],
    "recommended_actions": ACTIONS,
    "model_version": "20261123T184512Z-d20d9222",
}

ERROR_RESPONSE: dict[str, Any] = {
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
BATCH_RESPONSE: dict[str, Any] = {
    "model_version": "20261123T184512Z-d20d9222",
    "counts": {"branch-loyal": 0, "support-seeking": 1, "digital-affluent": 0},
    "n_errors": 1,
    "results": [
        {"index": 0, **ASSIGNMENT},
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
SEGMENT_CATALOG: dict[str, Any] = {
    "model_version": "20261123T184512Z-d20d9222",
    "segments": [SEGMENT],
}
CUSTOMER_RECORD: dict[str, Any] = {
    "customer_key": "38414",
    "segment_id": "support-seeking",
    "segment_name": "Support-seeking customers",
    "segment_description": "Low credit limits and few cards; they call the bank often.",
    "recommended_actions": ACTIONS,
    "confidence": 0.512,
    "atypical": False,
    "model_version": "20261123T184512Z-d20d9222",
    "current": True,
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
MODEL_SUMMARY: dict[str, Any] = {
    "model_version": "20261123T184512Z-d20d9222",
    "created_at": "2026-11-23T18:45:12Z",
    "k": 3,
    "n_rows": 660,
    "features": list(PROFILE),
    "data_sha256": "d20d9222771134f858148bea1a144615a874e98551cf12f445ec83c217e91a83",
    "metrics": {"selection": "silhouette", "silhouette": 0.5157, "knee_k": 3},
    "libraries": {"scikit-learn": "1.9.1", "numpy": "2.4.6"},
    "segments": ["branch-loyal", "support-seeking", "digital-affluent"],
    "signed": False,
}
HEALTH: dict[str, Any] = {"status": "ok"}
READY: dict[str, Any] = {
    "status": "ready",
    "model_version": "20261123T184512Z-d20d9222",
    "reason": None,
    "store": "ok",
    "rescoring": {
        "version": "20261123T184512Z-d20d9222",
        "state": "finished",
        "rescored": 1182,
        "remaining": 0,
        "started_at": "2026-11-24T09:00:02.114Z",
        "finished_at": "2026-11-24T09:00:03.620Z",
    },
    "rate_limits": "shared",
}
NOT_READY: dict[str, Any] = {
    "status": "not_ready",
    "model_version": None,
    "reason": "hash_mismatch: pipeline.joblib does not match the sha256 recorded",
}
RELOAD_RESULT: dict[str, Any] = {
    "model_version": "20261124T090000Z-d20d9222",
    "previous_version": "20261123T184512Z-d20d9222",
}

BATCH_REQUEST: dict[str, Any] = {"customers": [CUSTOMER]}
RELOAD_REQUEST: dict[str, Any] = {"version": "20261123T184512Z-d20d9222"}

PROMOTE_REQUEST: dict[str, Any] = {
    "version": "20261201T090000Z-d20d9222",
    "reason": "compared with the active version: 0.5% of customers move, no persona lost",
}

MODEL_VERSIONS: dict[str, Any] = {
    "active": "20261201T090000Z-d20d9222",
    "shadow": None,
    "versions": [
        {
            "version": "20261201T090000Z-d20d9222",
            "status": "active",
            "created_at": "2026-12-01T09:00:00Z",
            "n_rows": 660,
            "k": 3,
            "silhouette": 0.5157,
            "history": [
                {
                    "status": "candidate",
                    "at": "2026-12-01T09:00:02.114Z",
                    "by": "python -m training",
                    "reason": "trained on credit_card_customer_data.csv",
                },
                {
                    "status": "active",
                    "at": "2026-12-01T10:12:40.530Z",
                    "by": "admin",
                    "reason": "compared with the active version: 0.5% of customers move",
                },
            ],
        }
    ],
}

MOVE_REQUEST: dict[str, Any] = {
    "customer_key": "38414",
    "target_segment": "digital-affluent",
    "fixed": ["total_visits_bank"],
}
MOVES: dict[str, Any] = {
    "customer_key": "38414",
    "model_version": "20261123T184512Z-d20d9222",
    "segment_id": "support-seeking",
    "segment_name": "Support-seeking customers",
    "confidence": 0.427937,
    "fixed": ["total_visits_bank"],
    "moves": [
        {
            "segment_id": "digital-affluent",
            "segment_name": "Affluent digital customers",
            "reachable": True,
            "reason": None,
            "values": {
                "avg_credit_limit": 85349.0,
                "total_credit_cards": 4,
                "total_visits_bank": 0,
                "total_visits_online": 12,
                "total_calls_made": 8,
            },
            "changes": {
                "avg_credit_limit": 35349.0,
                "total_credit_cards": 1,
                "total_visits_online": 2,
                "total_calls_made": -1,
            },
            "effort": 1.297657,
            "confidence": 1e-06,
            "recommended_actions": ACTIONS,
        }
    ],
}
