"""Turning request bodies (one customer, a JSON batch, a CSV batch) into validated features.

One customer's body is parsed and validated in a single pass by pydantic-core. A batch is
validated item by item, so that one bad customer yields an error for its index while the
others are still scored.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from pydantic import ValidationError

from segmentation.features import (
    BANK_COLUMN_NAMES,
    CUSTOMER_KEY,
    CUSTOMER_KEY_MAX_LENGTH,
    FEATURES,
    ROW_NUMBER,
    canonical_column_name,
    could_be_customer_key,
)
from segmentation.scoring import FloatArray
from service.errors import (
    BatchTooLarge,
    InvalidInput,
    MalformedBody,
    UnsupportedMediaType,
    detail,
    field_list,
)
from service.schemas import CustomerFeatures, CustomerReference
from service.scoring.batch_screening import (
    Screened,
    decode_plain_batch,
    is_plain_number_text,
    numbers_in_text,
    screen_cells,
    screen_items,
    within_bounds,
)
from service.scoring.duplicate_keys import DuplicateKeyError, check_no_duplicate_keys

_CSV_OPTIONAL = frozenset({CUSTOMER_KEY, ROW_NUMBER})
_MAX_CSV_COLUMNS = 64
"""Far more than a customer file has; a header past it is refused before it is examined."""


@dataclass
class CustomerBatch:
    """A batch after validation: the valid customers' features and every invalid item's error."""

    size: int
    features: FloatArray
    keys: list[str | None]
    positions: list[int]
    """Input index of each valid customer, in input order."""
    errors: dict[int, dict[str, Any]] = field(default_factory=dict)
    references: dict[int, str] = field(default_factory=dict)
    """Items that give only a customer key: existing customers, to be found in the store."""
    invalid_keys: dict[int, str] = field(default_factory=dict)
    """The customer keys of invalid items that gave one, for their errors to name."""

    def key_of_error(self, index: int) -> str | None:
        """The customer key an item that was not scored gave, if any."""
        return self.references.get(index) or self.invalid_keys.get(index)


def validation_details(error: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as the error shape's details: the field, the rule, the message."""
    return [
        detail(".".join(str(part) for part in item["loc"]) or None, item["type"], item["msg"])
        for item in error.errors(include_url=False, include_input=False)
    ]


def parse_customer(body: bytes) -> CustomerFeatures:
    """One customer from a JSON body, parsed and validated in one pass."""
    try:
        customer = CustomerFeatures.model_validate_json(body)
    except ValidationError as error:
        raise _invalid_customer(error, body) from None
    _refuse_duplicate_keys(body, len(customer.model_fields_set))
    return customer


def _refuse_duplicate_keys(body: bytes, names_kept: int) -> None:
    try:
        check_no_duplicate_keys(body, names_kept)
    except DuplicateKeyError as error:
        raise MalformedBody(
            str(error), details=[detail(error.name, "duplicate_key", str(error))]
        ) from None


_API_NAME_OF = {
    name: api_name
    for name, api_name in BANK_COLUMN_NAMES.items()
    if api_name != name and api_name in {CUSTOMER_KEY, *FEATURES}
}
"""The bank's export column names that stand for a field of the API, and that field."""


def _invalid_customer(error: ValidationError, body: bytes) -> InvalidInput | MalformedBody:
    """The error for an invalid customer, with the two common mistakes said plainly: the
    bank's export column names instead of the API's, and a known customer's key alone."""
    problems = error.errors(include_url=False, include_input=False)
    given = {str(item["loc"][0]) for item in problems if item["type"] == "extra_forbidden"}
    export_names = sorted(given & _API_NAME_OF.keys())
    if export_names:
        mapping = ", ".join(f"{name} -> {_API_NAME_OF[name]}" for name in export_names)
        return InvalidInput(
            f"the body uses the bank's export column names; send the API's: {mapping}",
            details=[
                detail(name, "export_column_name", f"send {_API_NAME_OF[name]} instead")
                for name in export_names
            ],
        )
    missing = {str(item["loc"][0]) for item in problems if item["type"] == "missing"}
    if missing == set(FEATURES) and len(problems) == len(FEATURES) and _names_a_key(body):
        details = validation_details(error)
        return InvalidInput(
            "a customer_key alone is not scored here: look a known customer up with "
            "GET /customers/{customer_key}, score the stored customer with POST "
            '/segment/batch ({"customers": [{"customer_key": ...}]}), or send all five '
            f"features: {field_list(details)}",
            details=details,
        )
    return _invalid_body(error, "the customer is invalid")


def _names_a_key(body: bytes) -> bool:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(document, dict) and CUSTOMER_KEY in document


def _invalid_body(error: ValidationError, message: str) -> InvalidInput | MalformedBody:
    details = validation_details(error)
    if any(item["rule"] == "json_invalid" for item in details):
        return MalformedBody("the request body is not valid JSON", details=details)
    return InvalidInput(f"{message}: {field_list(details)}", details=details)


def features_of(customers: Sequence[CustomerFeatures]) -> FloatArray:
    """The ``(n, 5)`` features of validated customers, in ``FEATURES`` order."""
    return np.array(
        [[getattr(customer, name) for name in FEATURES] for customer in customers],
        dtype=np.float64,
    ).reshape(len(customers), len(FEATURES))


_VALUES_PER_CUSTOMER = 1 + len(FEATURES) + 2 + CUSTOMER_KEY_MAX_LENGTH
"""The most that :func:`_refuse_a_flood_of_values` counts for one valid customer: its
object, the names of its fields (five features and a key), the key's text, and every
character of the key if each were a brace, a bracket or a quote."""


def parse_json_batch(body: bytes, *, max_size: int) -> CustomerBatch:
    """``{"customers": [...]}``; each item is validated on its own."""
    plain = decode_plain_batch(body)
    if plain is not None:  # the common case: every item a plainly valid customer
        size = len(plain.keys)
        _check_size(size, max_size)
        _refuse_duplicate_keys(body, plain.names)
        return CustomerBatch(
            size=size, features=plain.features, keys=plain.keys, positions=list(range(size))
        )
    _refuse_a_flood_of_values(body, max_size)
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise MalformedBody(
            "the request body is not valid JSON",
            details=[detail(None, "json_invalid", str(error))],
        ) from None
    if not isinstance(document, dict) or set(document) != {"customers"}:
        raise InvalidInput(
            'the body must be an object with exactly one field, "customers"',
            details=[detail("customers", "missing", 'expected {"customers": [...]}')],
        )
    items = document["customers"]
    if not isinstance(items, list):
        raise InvalidInput(
            "customers must be a list",
            details=[detail("customers", "list_type", "customers must be a list")],
        )
    _check_size(len(items), max_size)
    _refuse_duplicate_keys(body, 1 + sum(len(item) for item in items if isinstance(item, dict)))
    return validate_items(items)


def _refuse_a_flood_of_values(body: bytes, max_size: int) -> None:
    """Refuse, before parsing, a body holding far more objects, arrays and strings than
    ``max_size`` customers can.

    The count of items is known only once the JSON is parsed, and 8 MiB of ``{},`` parse
    into 2.8 million objects (some 180 MB) before it could be checked. Counting braces,
    brackets and quotes takes a few milliseconds and bounds what parsing can make (to
    about 50 MB at the default MAX_BATCH_SIZE); no batch of ``max_size`` valid customers
    reaches the bound, whatever their keys hold.
    """
    values = body.count(b"{") + body.count(b"[") + body.count(b'"') // 2
    if values > _VALUES_PER_CUSTOMER * (max_size + 1):
        raise _too_large(
            f"the batch holds {values:,} objects, arrays and strings: more than "
            f"{max_size} customers (MAX_BATCH_SIZE) can",
            max_size,
        )


def parse_csv_batch(body: bytes, *, max_size: int) -> CustomerBatch:
    """A CSV with the bank's (or snake_case) column names, one customer per row, its cells
    separated by commas (or by semicolons or tabs, as spreadsheets in some locales write
    them, when the header holds no comma)."""
    if body.startswith(_WORKBOOK_SIGNATURES):
        message = "this is a spreadsheet workbook, not CSV: save it as CSV (UTF-8) and send that"
        raise UnsupportedMediaType(message, details=[detail(None, "media_type", message)])
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise MalformedBody(f"the CSV is not UTF-8 text: {error}") from None
    delimiter = _delimiter(text)
    table = _plain_table(text, delimiter, max_size)
    if table is not None:
        batch = _plain_csv_batch(table)
        if batch is not None:
            return batch
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(rows, None)
    if not header:
        raise InvalidInput(
            "the CSV is empty: expected a header row naming the features",
            details=[detail(None, "missing", "no header row")],
        )
    columns = _header_columns(header)
    # Rows are read only up to one past the limit: a body of millions of tiny rows (well
    # within MAX_BODY_BYTES) would otherwise cost hundreds of megabytes before the refusal.
    filled = (row for row in rows if "".join(row).strip())  # blank rows are skipped
    records = list(itertools.islice(filled, max_size))
    if next(filled, None) is not None:
        raise _too_large(f"the batch has more than {max_size} customers (MAX_BATCH_SIZE)", max_size)
    screened = _screen_csv(columns, records)
    return _csv_batch(columns, records, screened)


def _header_columns(header: list[str]) -> list[str]:
    columns = [canonical_column_name(name) for name in header[: _MAX_CSV_COLUMNS + 1]]
    _check_csv_columns(columns)
    return columns


def _csv_batch(columns: list[str], records: list[list[str]], screened: Screened) -> CustomerBatch:
    items, ragged, ragged_keys = _csv_items(columns, records, screened.leftovers)
    # A row with a key and empty features is missing them (not a look-up, as in JSON).
    return validate_items(
        items, known_errors=ragged, known_keys=ragged_keys, screened=screened, by_key=False
    )


_CSV_FIELD_LIMIT = csv.field_size_limit()
"""The longest cell the csv module reads (it refuses a longer one)."""


@dataclass(frozen=True)
class PlainTable:
    """A CSV that plain splitting reads as the csv module does (see :func:`_plain_table`)."""

    header: list[str]
    rows: list[str]
    """Its lines past the header, the empty ones left out."""
    delimiter: str

    def columns(self) -> list[list[str]]:
        """The cells, a list per column."""
        width = len(self.header)
        cells = self.delimiter.join(self.rows).split(self.delimiter) if self.rows else []
        return [cells[column::width] for column in range(width)]

    def numbers(self) -> FloatArray | None:
        """Every cell as a float, ``(rows, columns)``, when every cell is a JSON number (see
        :func:`~service.scoring.batch_screening.numbers_in_text`); None otherwise."""
        text = self.delimiter.join(self.rows)
        if self.delimiter != ",":
            if "," in text:  # a decimal comma, say: not one number a cell
                return None
            text = text.replace(self.delimiter, ",")
        numbers = numbers_in_text(text, len(self.rows) * len(self.header))
        return None if numbers is None else numbers.reshape(len(self.rows), len(self.header))


def _plain_table(text: str, delimiter: str, max_size: int) -> PlainTable | None:
    """The CSV, when the csv module would read it as plain splitting does: no quotes, lines
    ended by ``\\n`` or ``\\r\\n``, every line as wide as the header, at most ``max_size``
    rows and no cell too long. None for any other CSV, which the csv module reads.

    Splitting the whole text at once instead of reading row by row is most of what makes
    a CSV batch as quick to read as a JSON one.
    """
    # Past the header and one line per customer (and the last line's end) the csv module
    # reads one row past the limit and stops: splitting millions of lines would not.
    if '"' in text or text.count("\n") > max_size + 1:
        return None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            return None
    lines = text.split("\n")
    header = lines[0]
    rows = list(filter(None, lines[1:]))  # the csv module yields no row for an empty line
    width = header.count(delimiter) + 1
    if (
        not header
        or len(rows) > max_size
        or max(map(len, lines)) > _CSV_FIELD_LIMIT
        or set(map(str.count, rows, itertools.repeat(delimiter))) - {width - 1}
    ):
        return None
    return PlainTable(header=header.split(delimiter), rows=rows, delimiter=delimiter)


def _plain_csv_batch(table: PlainTable) -> CustomerBatch | None:
    """The batch of a plainly split CSV, or None when a row is blank (the csv module's
    reading skips it, and counts rows without it)."""
    columns = _header_columns(table.header)
    if CUSTOMER_KEY not in columns:
        batch = _numbers_only_batch(table, columns)
        if batch is not None:
            return batch
    cells = table.columns()
    size = len(table.rows)
    key_cells = cells[columns.index(CUSTOMER_KEY)] if CUSTOMER_KEY in columns else None
    features, keys, good = screen_cells(
        [cells[columns.index(feature)] for feature in FEATURES], key_cells
    )
    kept = np.flatnonzero(good)
    leftovers = np.flatnonzero(~good).tolist()
    records: list[list[str]] = [[]] * size
    for index in leftovers:
        records[index] = [column[index] for column in cells]
        if not "".join(records[index]).strip():
            return None
    screened = Screened(
        positions=kept.tolist(),
        features=features[good],
        keys=[keys[row] for row in kept.tolist()] if key_cells else [None] * len(kept),
        leftovers=leftovers,
    )
    return _csv_batch(columns, records, screened)


def _numbers_only_batch(table: PlainTable, columns: list[str]) -> CustomerBatch | None:
    """The batch of a keyless CSV of numbers only (the features and the export's row
    number, say), read in one pass without a string per cell, when every row is valid;
    None otherwise, and the cells are screened one column at a time."""
    numbers = table.numbers() if table.rows else None
    if numbers is None:
        return None
    features = numbers[:, [columns.index(feature) for feature in FEATURES]]
    if not within_bounds(features).all():
        return None
    size = len(table.rows)
    return CustomerBatch(
        size=size, features=features, keys=[None] * size, positions=list(range(size))
    )


_WORKBOOK_SIGNATURES = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")
"""How .xlsx (a ZIP archive) and .xls (an OLE compound file) begin."""


def _delimiter(text: str) -> str:
    """The header's separator: a comma, else a semicolon, else a tab."""
    header = text[: text.find("\n")] if "\n" in text else text
    for candidate in (",", ";", "\t"):
        if candidate in header:
            return candidate
    return ","


def _check_size(size: int, max_size: int) -> None:
    if size > max_size:
        raise _too_large(
            f"the batch has {size} customers; the limit is {max_size} (MAX_BATCH_SIZE)", max_size
        )


def _too_large(message: str, max_size: int) -> BatchTooLarge:
    return BatchTooLarge(
        message, details=[detail("customers", "max_length", f"at most {max_size} customers")]
    )


def _check_csv_columns(columns: list[str]) -> None:
    if len(columns) > _MAX_CSV_COLUMNS:
        raise InvalidInput(
            f"the CSV header has more than {_MAX_CSV_COLUMNS} columns; "
            f"expected {', '.join(FEATURES)}, optionally customer_key",
            details=[detail(None, "too_many_columns", f"at most {_MAX_CSV_COLUMNS} columns")],
        )
    counts = Counter(columns)
    missing = [name for name in FEATURES if name not in counts]
    unknown = [name for name in counts if name not in FEATURES and name not in _CSV_OPTIONAL]
    repeated = sorted(name for name, count in counts.items() if count > 1)
    details = [detail(name, "missing", f"column {name} is required") for name in missing]
    details += [detail(name, "extra_forbidden", f"column {name} is not known") for name in unknown]
    details += [detail(name, "duplicate", f"column {name} appears twice") for name in repeated]
    if details:
        raise InvalidInput(
            "the CSV columns are not the customer features "
            f"(expected {', '.join(FEATURES)}, optionally customer_key)",
            details=details,
        )


def _screen_csv(columns: list[str], records: list[list[str]]) -> Screened:
    """Screen the rows column by column; rows not as wide as the header are left over."""
    width = len(columns)
    regular = [index for index, record in enumerate(records) if len(record) == width]
    table = records if len(regular) == len(records) else [records[index] for index in regular]
    cells = list(zip(*table, strict=True)) if table else [()] * width
    key_cells = cells[columns.index(CUSTOMER_KEY)] if CUSTOMER_KEY in columns else None
    features, keys, good = screen_cells(
        [cells[columns.index(feature)] for feature in FEATURES], key_cells
    )
    kept = np.flatnonzero(good).tolist()
    positions = [regular[row] for row in kept]
    return Screened(
        positions=positions,
        features=features[good],
        keys=[keys[row] for row in kept],
        leftovers=sorted(set(range(len(records))).difference(positions)),
    )


def _csv_items(
    columns: list[str], records: list[list[str]], rows: Iterable[int]
) -> tuple[list[dict[str, Any] | None], dict[int, dict[str, Any]], dict[int, str]]:
    """These rows as items named by the header (None for the others); a row with cells past
    the header is an error (returned with the key it gave, if any).

    An empty cell, or one a short row lacks, is left out of the item, so that its error
    says the field is missing.
    """
    kept = [(position, name) for position, name in enumerate(columns) if name != ROW_NUMBER]
    items: list[dict[str, Any] | None] = [None] * len(records)
    ragged: dict[int, dict[str, Any]] = {}
    ragged_keys: dict[int, str] = {}
    for index in rows:
        record = records[index]
        item: dict[str, Any] = {}
        for position, name in kept:
            cell = record[position].strip() if position < len(record) else ""
            if cell:
                item[name] = cell if name == CUSTOMER_KEY else _csv_number(cell)
        if len(record) > len(columns):
            message = f"row {index} has {len(record)} cells; the header names {len(columns)}"
            ragged[index] = InvalidInput(
                message, details=[detail(None, "too_many_cells", message)]
            ).as_body()["error"]
            key = _key_given(item)
            if key is not None:
                ragged_keys[index] = key
            continue
        items[index] = item
    return items, ragged, ragged_keys


def _csv_number(cell: str) -> Any:
    """A CSV cell as a number when it is one; otherwise as found, for the error to quote."""
    if not is_plain_number_text(cell):
        return cell
    try:
        return int(cell)
    except ValueError:
        pass
    try:
        number = float(cell)
    except ValueError:
        return cell
    return number if math.isfinite(number) else cell


def validate_items(
    items: Sequence[Any],
    *,
    known_errors: dict[int, dict[str, Any]] | None = None,
    known_keys: dict[int, str] | None = None,
    screened: Screened | None = None,
    by_key: bool = True,
) -> CustomerBatch:
    """Validate every item; valid ones become features, invalid ones an error by index.

    Screening vouches for the plainly valid items at once; the rest are validated one by
    one (which also gives each invalid item its precise error). ``known_errors`` are items
    already found invalid while reading them (``known_keys`` their customer keys);
    ``screened`` is a screening already done (a CSV's, column by column), in which case only
    its leftovers need to be items. With ``by_key``, an item that is a customer key alone
    is an existing customer (a reference to the store).
    """
    screened = screened or screen_items(items)
    valid: list[CustomerFeatures] = []
    positions: list[int] = []
    errors: dict[int, dict[str, Any]] = dict(known_errors or {})
    references: dict[int, str] = {}
    invalid_keys = dict(known_keys or {})
    for index in screened.leftovers:
        if index in errors:
            continue
        item = items[index]
        try:
            if by_key and isinstance(item, dict) and item.keys() == {CUSTOMER_KEY}:
                references[index] = CustomerReference.model_validate(item).customer_key
                continue
            valid.append(CustomerFeatures.model_validate(item))
        except ValidationError as error:
            errors[index] = _invalid_body(error, f"customer {index} is invalid").as_body()["error"]
            key = _key_given(item)
            if key is not None:
                invalid_keys[index] = key
            continue
        positions.append(index)
    features, keys = screened.features, screened.keys
    if valid:
        order = np.argsort(screened.positions + positions, kind="stable")
        features = np.vstack([features, features_of(valid)])[order]
        every_key = keys + [customer.customer_key for customer in valid]
        keys = [every_key[row] for row in order.tolist()]
        positions = sorted(screened.positions + positions)
    else:
        positions = screened.positions
    return CustomerBatch(
        size=len(items),
        features=features,
        keys=keys,
        positions=positions,
        errors=errors,
        references=references,
        invalid_keys=invalid_keys,
    )


def _key_given(item: Any) -> str | None:
    """The customer key an invalid item gave, when it is one a request may send."""
    value = item.get(CUSTOMER_KEY) if isinstance(item, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    key = str(value).strip()
    return key if could_be_customer_key(key) else None
