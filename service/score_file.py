"""`python -m service.score_file`: score a whole customer file into the customer store.

Uses the same validation, scoring and recording as `POST /segment/batch`, chunk by chunk,
with the model `latest` names (verified exactly as the service verifies it).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from segmentation.artifact import ArtifactError
from service.config import settings_for_command
from service.customer_records import CustomerRecords
from service.errors import ServiceError
from service.models.model_loading import load_model
from service.scoring.batch_scoring import score_batch
from service.scoring.customer_input import CustomerBatch, parse_csv_batch
from service.store.customer_store import CustomerStore

logger = logging.getLogger(__name__)

CHUNK_SIZE = 10_000
_ERRORS_SHOWN = 5


def chunks(batch: CustomerBatch, size: int) -> list[CustomerBatch]:
    """Split a validated batch into consecutive pieces (errors travel with their rows)."""
    pieces = []
    for start in range(0, batch.size, size):
        stop = min(start + size, batch.size)
        rows = [row for row, index in enumerate(batch.positions) if start <= index < stop]
        pieces.append(
            CustomerBatch(
                size=stop - start,
                features=batch.features[rows] if rows else np.empty((0, batch.features.shape[1])),
                keys=[batch.keys[row] for row in rows],
                positions=[batch.positions[row] - start for row in rows],
                errors={i - start: e for i, e in batch.errors.items() if start <= i < stop},
            )
        )
    return pieces


def main(argv: Sequence[str] | None = None) -> int:
    settings = settings_for_command()
    parser = argparse.ArgumentParser(prog="python -m service.score_file", description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="CSV of customers")
    parser.add_argument("--models-dir", type=Path, default=settings.models_dir)
    parser.add_argument("--database-url", default=settings.database_url)
    parser.add_argument("--chunk-size", type=int, default=CHUNK_SIZE)
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        content = arguments.data.read_bytes()
        batch = parse_csv_batch(content, max_size=sys.maxsize)
        model, _ = load_model(
            arguments.models_dir,
            signing_keys=settings.signing_keys,
            self_test_rows=settings.self_test_rows,
        )
    except OSError as error:
        return _fail(f"--data {arguments.data}: {error.strerror or error}")
    except ServiceError as error:
        return _fail(f"--data {arguments.data}: {error.message}")
    except ArtifactError as error:
        return _fail(f"model: {error.code}: {error.message}")
    records = CustomerRecords(CustomerStore(arguments.database_url))
    counts: Counter[str] = Counter()
    errors: list[str] = []
    unrecorded = 0
    try:
        for number, piece in enumerate(chunks(batch, max(arguments.chunk_size, 1))):
            response = score_batch(model, piece, records).response
            counts.update({k: v for k, v in response["counts"].items() if v})
            for result in response["results"]:
                if "error" in result:
                    row = number * arguments.chunk_size + result["index"] + 1
                    errors.append(f"row {row}: {result['error']['message']}")
                elif result.get("recorded") is False:
                    unrecorded += 1
    finally:
        records.close()
    _report(model.version, batch.size, counts, errors, unrecorded)
    return 1 if unrecorded else 0


def _report(
    version: str, size: int, counts: Counter[str], errors: list[str], unrecorded: int
) -> None:
    out = sys.stdout
    out.write(f"model {version}: {size} customers, {sum(counts.values())} scored\n")
    for segment_id, count in counts.most_common():
        out.write(f"  {segment_id:<28} {count:>9}\n")
    if errors:
        out.write(f"{len(errors)} rows invalid, not scored:\n")
        out.writelines(f"  {line}\n" for line in errors[:_ERRORS_SHOWN])
    if unrecorded:
        out.write(f"{unrecorded} assignments could not be recorded: the store is unavailable\n")


def _fail(message: str) -> int:
    sys.stderr.write(f"error: {message}\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
