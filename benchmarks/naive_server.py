"""REFERENCE ONLY, not the product: the scoring service a bank would otherwise deploy.

This is the baseline the benchmark compares the product with, written the way tutorials
and most in-house deployments serve a scikit-learn model: a pydantic model validates the
body, the route builds a one-row pandas DataFrame and calls ``pipeline.predict`` on it, in
a plain ``def`` route (FastAPI runs it in its thread pool, as its docs advise for blocking
work). It loads the same verified artifact as the product (``MODELS_DIR/latest``, hashes
and, with ``MODEL_SIGNING_KEY``, the signature checked) but answers only the label.

    MODELS_DIR=models .venv/bin/python -m uvicorn benchmarks.naive_server:app --port 8001
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pandas as pd
from fastapi import FastAPI, Request
from pydantic import BaseModel, Field

from segmentation.artifact import load_pipeline, read_latest
from segmentation.features import FEATURES

logger = logging.getLogger(__name__)


class Customer(BaseModel):
    """One customer, as the naive service accepts it."""

    customer_key: str | int | None = None
    avg_credit_limit: float = Field(ge=0)
    total_credit_cards: int = Field(ge=0)
    total_visits_bank: int = Field(ge=0)
    total_visits_online: int = Field(ge=0)
    total_calls_made: int = Field(ge=0)


class Segment(BaseModel):
    segment: int


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    models_dir = Path(os.environ.get("MODELS_DIR", "models"))
    signing_key = os.environ.get("MODEL_SIGNING_KEY")
    version = read_latest(models_dir)
    app.state.pipeline = load_pipeline(
        models_dir, version, signing_keys=(signing_key,) if signing_key else ()
    )
    logger.info("naive reference server loaded model %s", version)
    yield


app = FastAPI(title="Naive reference scorer (benchmark baseline)", lifespan=lifespan)


@app.post("/segment", response_model=Segment)
def score_customer(customer: Customer, request: Request) -> Segment:
    """Score one customer through a one-row DataFrame and ``pipeline.predict``."""
    frame = pd.DataFrame([customer.model_dump()])[list(FEATURES)]
    return Segment(segment=int(request.app.state.pipeline.predict(frame)[0]))


@app.get("/ready")
def read_readiness() -> dict[str, str]:
    """Answers once the lifespan has loaded the model (uvicorn serves nothing before)."""
    return {"status": "ready"}
