"""The ceiling: what FastAPI on uvicorn answers when the route does no work at all.

``POST /segment`` returns a constant JSON body, rendered once at import, without reading
the request. It runs on the same uvicorn settings as the product, so the gap between the
two is what the product's own parsing, scoring and rendering cost.

    .venv/bin/python -m uvicorn benchmarks.ceiling_server:app --port 8002
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI
from starlette.responses import Response

# Shaped like a real assignment, so the bytes on the wire are comparable with ours.
_ANSWER = orjson.dumps(
    {
        "customer_key": "87073",
        "segment_id": "branch-loyal",
        "segment_name": "Branch-loyal customers",
        "recommended_actions": {
            "marketing": ["Offer a mid-tier card upgrade"],
            "service": ["Keep a named branch contact"],
        },
        "confidence": 0.512345,
        "distances": {"branch-loyal": 1.402, "support-seeking": 2.874, "digital-affluent": 4.551},
        "runner_up_segment_id": "support-seeking",
        "atypical": False,
        "atypical_reasons": [],
        "model_version": "20261123T184512Z-d20d9222",
    }
)

app = FastAPI(title="Ceiling (benchmark): constant answer")


@app.post("/segment")
async def score_customer() -> Response:
    """A constant answer; the request body is never read."""
    return Response(_ANSWER, media_type="application/json")


@app.get("/ready")
async def read_readiness() -> Response:
    return Response(b'{"status":"ready"}', media_type="application/json")
