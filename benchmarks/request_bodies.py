"""Request bodies for the load generator, rendered once from the bank's real customers."""

from __future__ import annotations

import csv
import io
import itertools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from segmentation.features import CUSTOMER_KEY, FEATURES, canonical_column_name

logger = logging.getLogger(__name__)

SHARED_DATA = Path("..") / "shared" / "data" / "credit_card_customer_data.csv"
"""The bank's export, relative to the repository root."""

BUNDLED_DATA = Path("training") / "sample_data" / "credit_card_customer_data.csv"
"""The same export as shipped inside the project."""

BANK_HEADER = (
    "Sl_No",
    "Avg_Credit_Limit",
    "Total_Credit_Cards",
    "Total_visits_bank",
    "Total_visits_online",
    "Total_calls_made",
)
"""The export's header as the bank writes it, less the key (nothing is recorded)."""


@dataclass(frozen=True)
class Customer:
    """One real customer: the export's key and the five features as the export gives them."""

    key: str
    features: tuple[int | float, ...]


def find_customer_data(repo_root: Path) -> Path:
    """The shared export when it is there, else the copy bundled with training."""
    for candidate in (repo_root / SHARED_DATA, repo_root / BUNDLED_DATA):
        if candidate.is_file():
            return candidate.resolve()
    raise FileNotFoundError(
        f"no customer data: neither {repo_root / SHARED_DATA} nor {repo_root / BUNDLED_DATA}"
    )


def read_customers(path: Path) -> list[Customer]:
    """Every customer of a bank export, in file order."""
    with path.open(encoding="utf-8-sig", newline="") as stream:
        reader = csv.reader(stream)
        columns = [canonical_column_name(name) for name in next(reader)]
        key_at = columns.index(CUSTOMER_KEY)
        feature_at = [columns.index(name) for name in FEATURES]
        return [
            Customer(key=row[key_at].strip(), features=tuple(_number(row[i]) for i in feature_at))
            for row in reader
            if row
        ]


def _number(cell: str) -> int | float:
    try:
        return int(cell)
    except ValueError:
        return float(cell)


def _cycle(customers: list[Customer], count: int) -> Iterator[Customer]:
    """``count`` customers, going round the real ones as often as needed."""
    return itertools.islice(itertools.cycle(customers), count)


def _customer_object(customer: Customer) -> dict[str, object]:
    # No customer key: the customer is scored, not recorded, exactly the work the reference
    # servers do. The keyed cases (keyed_bodies) are what a CRM sends for known customers.
    return dict(zip(FEATURES, customer.features, strict=True))


def single_bodies(customers: list[Customer]) -> list[bytes]:
    """One ``POST /segment`` body per customer (snake_case features, no customer key)."""
    return [orjson.dumps(_customer_object(customer)) for customer in customers]


def keyed_bodies(customers: list[Customer]) -> list[bytes]:
    """One ``POST /segment`` body per customer with its own key, as a CRM sends them for
    the bank's known customers: every answer is recorded in the store, and consecutive
    requests write different customers (the training snapshot has them all already)."""
    return [
        orjson.dumps({CUSTOMER_KEY: customer.key, **_customer_object(customer)})
        for customer in customers
    ]


def mlflow_bodies(customers: list[Customer]) -> list[bytes]:
    """One MLflow ``/invocations`` body per customer, as a one-row ``dataframe_split``."""
    return [
        orjson.dumps(
            {"dataframe_split": {"columns": list(FEATURES), "data": [list(customer.features)]}}
        )
        for customer in customers
    ]


def json_batch_body(customers: list[Customer], count: int) -> bytes:
    """``{"customers": [...]}`` with ``count`` customers."""
    return orjson.dumps(
        {"customers": [_customer_object(customer) for customer in _cycle(customers, count)]}
    )


def csv_batch_body(customers: list[Customer], count: int) -> bytes:
    """A CSV batch of ``count`` customers under the bank's own header."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(BANK_HEADER)
    for row_number, customer in enumerate(_cycle(customers, count), start=1):
        writer.writerow((row_number, *customer.features))
    return text.getvalue().encode()


def arrow_batch_body(customers: list[Customer], count: int) -> bytes:
    """An Arrow IPC stream of ``count`` customers: the features as columns of the types the
    export's values have (integers, the credit limit too), no key, one record batch."""
    import pyarrow as arrow  # only the Arrow case needs it

    rows = list(_cycle(customers, count))
    table = arrow.table(
        {name: [row.features[at] for row in rows] for at, name in enumerate(FEATURES)}
    )
    sink = arrow.BufferOutputStream()
    with arrow.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    body: bytes = sink.getvalue().to_pybytes()
    return body


def write_bodies(path: Path, bodies: Iterable[bytes]) -> Path:
    """Write bodies as ``<byte length>\\n<body>`` records, the format the Lua script reads."""
    with path.open("wb") as stream:
        for body in bodies:
            stream.write(b"%d\n" % len(body))
            stream.write(body)
    return path
