"""Turning Arrow IPC stream and Parquet batch bodies into validated features, column by column.

The rules are the CSV body's (see :func:`~service.scoring.customer_input.parse_csv_batch`):
the same column names, the optional ``customer_key`` and row-number columns, unknown
columns refused, the same screening of every row at once, and each row it cannot vouch for
validated as the CSV row with the same values would be, so that its error is the CSV's.
What Arrow adds is types: a feature column must be numeric, a key column text or integers,
and a column of any other type is refused as a whole, naming it and its type.

pyarrow is imported here only when such a body arrives: a worker that serves JSON alone
never loads it.
"""

from __future__ import annotations

import logging
import math
import struct
from collections import Counter
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from segmentation.features import (
    CUSTOMER_KEY,
    CUSTOMER_KEY_MAX_LENGTH,
    FEATURES,
    ROW_NUMBER,
    canonical_column_name,
    could_be_customer_key,
)
from service.errors import (
    BatchTooLarge,
    InvalidInput,
    MalformedBody,
    UnsupportedMediaType,
    detail,
)
from service.scoring.batch_screening import Screened, within_bounds
from service.scoring.customer_input import CustomerBatch, validate_items

logger = logging.getLogger(__name__)

ARROW_STREAM = "application/vnd.apache.arrow.stream"
"""The media type of an Arrow IPC stream (IANA registered)."""
PARQUET = "application/vnd.apache.parquet"
"""The media type of a Parquet file (IANA registered)."""

_MAX_COLUMNS = 64
"""As for a CSV header: far more than a customer file has."""
_DECODED_BYTES_PER_ROW = 1024
"""Far more than a customer's five numbers, key and row number take in a Parquet file's
pages once decompressed; a footer that says more is a decompression bomb."""
_DECODED_BYTES_PER_FILE = 1024 * 1024
"""Room for the pages' headers and the statistics, whatever the number of rows."""
_MAX_RECORD_BATCHES = 1_000
"""Record batches in one stream at most. Writers cut a table into batches of thousands of
rows; each batch costs its own reading and checking, and a body of empty batches (some
300 bytes each) kept a worker busy for half a second without a single customer."""
_ARROW_FILE_MAGIC = b"ARROW1"
_PARQUET_MAGIC = b"PAR1"


def parse_arrow_batch(body: bytes, *, max_size: int) -> CustomerBatch:
    """An Arrow IPC stream of customers, one per row (any number of record batches)."""
    import pyarrow as arrow

    if not body:
        raise _malformed("the body is empty: expected an Arrow IPC stream")
    if body.startswith(_ARROW_FILE_MAGIC):
        raise _malformed(
            "this is an Arrow IPC file, not a stream: write it with pyarrow.ipc.new_stream "
            f"(or send it as {PARQUET} if it is Parquet)"
        )
    try:
        messages = arrow.ipc.MessageReader.open_stream(arrow.py_buffer(body))
        schema = arrow.ipc.read_schema(messages.read_next_message())
        columns = _check_columns(schema)
        batches: list[Any] = []
        rows = 0
        for message in messages:
            if len(batches) == _MAX_RECORD_BATCHES:
                raise _too_large(
                    f"the stream has more than {_MAX_RECORD_BATCHES:,} record batches: write "
                    "the customers in fewer, larger ones",
                    max_size,
                )
            # Each batch's row count and compression are read from its header before the
            # batch itself: 25 KB of compressed zeros decompress into hundreds of megabytes.
            rows += _uncompressed_rows(message)
            if rows > max_size:
                raise _too_large(
                    f"the batch has more than {max_size} customers (MAX_BATCH_SIZE)", max_size
                )
            batch = arrow.ipc.read_record_batch(message, schema)
            # Offsets and lengths of a hostile stream are checked before any value is read.
            batch.validate(full=True)
            batches.append(batch)
        table = arrow.Table.from_batches(batches, schema=schema)
    except (arrow.ArrowException, OSError, ValueError, StopIteration) as error:
        reason = _one_line(error) if str(error) else "it ends before its schema"
        raise _malformed(f"the body is not a readable Arrow IPC stream: {reason}") from None
    return _batch_of(table, columns)


_RECORD_BATCH = 3
"""The IPC format's ``MessageHeader`` union: a record batch (1 is a schema, 2 a dictionary)."""


def _uncompressed_rows(message: Any) -> int:
    """A record batch message's row count, read from its header (the ``Message`` flatbuffer
    of the IPC format) without reading the batch; refuses compressed buffers, whose size
    once decompressed only the buffers themselves say.

    Raises
    ------
    ValueError
        The message is not a record batch, or its header cannot be read.
    UnsupportedMediaType
        Its buffers are compressed (LZ4 or ZSTD).
    """
    header = message.metadata.to_pybytes()
    try:
        root = struct.unpack_from("<I", header, 0)[0]
        kind_at, batch_at = _field(header, root, 1), _field(header, root, 2)
        if kind_at is None or batch_at is None or header[kind_at] != _RECORD_BATCH:
            raise ValueError(f"a {message.type} message where a record batch belongs")
        batch = batch_at + struct.unpack_from("<I", header, batch_at)[0]
        length_at = _field(header, batch, 0)
        rows = struct.unpack_from("<q", header, length_at)[0] if length_at is not None else 0
        compressed = _field(header, batch, 3) is not None
    except (struct.error, IndexError):
        raise ValueError("a record batch's header is damaged") from None
    if rows < 0:
        raise ValueError(f"a record batch of {rows} rows")
    if compressed:
        message_text = (
            "the stream's buffers are compressed (LZ4 or ZSTD): send them uncompressed "
            "(pyarrow.ipc.IpcWriteOptions(compression=None)); HTTP compresses if need be"
        )
        raise UnsupportedMediaType(
            message_text, details=[detail(None, "compressed_buffers", message_text)]
        )
    return int(rows)


def _field(buffer: bytes, table: int, field: int) -> int | None:
    """Where a flatbuffer table's field is, or None when the table leaves it out."""
    vtable = table - struct.unpack_from("<i", buffer, table)[0]
    entry = 4 + 2 * field
    if entry >= struct.unpack_from("<H", buffer, vtable)[0]:
        return None
    offset: int = struct.unpack_from("<H", buffer, vtable + entry)[0]
    return table + offset if offset else None


def parse_parquet_batch(body: bytes, *, max_size: int) -> CustomerBatch:
    """A Parquet file of customers, one per row."""
    import pyarrow as arrow
    import pyarrow.parquet as parquet

    if not body.startswith(_PARQUET_MAGIC) or not body.endswith(_PARQUET_MAGIC):
        raise _malformed("the body is not a Parquet file (it must begin and end with PAR1)")
    try:
        file = parquet.ParquetFile(arrow.BufferReader(body))
        schema = file.schema_arrow
        columns = _check_columns(schema)
        # The footer's count, before any page is decoded: a few kilobytes of run-length
        # encoded pages can stand for billions of rows.
        rows = file.metadata.num_rows
        if rows > max_size:
            raise _too_large(
                f"the batch has {rows} customers; the limit is {max_size} (MAX_BATCH_SIZE)",
                max_size,
            )
        decoded = sum(
            file.metadata.row_group(at).total_byte_size for at in range(file.num_row_groups)
        )
        if decoded > _DECODED_BYTES_PER_ROW * rows + _DECODED_BYTES_PER_FILE:
            raise _malformed(
                f"the file's {rows} rows take {decoded:,} bytes once decompressed (its footer "
                f"says): more than customers take ({_DECODED_BYTES_PER_ROW} bytes a row)"
            )
        # Keys are read as a dictionary: a dictionary page's one long text would otherwise
        # be copied into every row that names it.
        keys = [f.name for f, name in zip(schema, columns, strict=True) if name == CUSTOMER_KEY]
        file = parquet.ParquetFile(arrow.BufferReader(body), read_dictionary=keys)
        table = file.read(use_threads=False)
        if table.num_rows > max_size:  # a footer that understated its row groups
            raise _too_large(
                f"the batch has more than {max_size} customers (MAX_BATCH_SIZE)", max_size
            )
        table.validate(full=True)
    except (arrow.ArrowException, OSError, ValueError) as error:
        raise _malformed(f"the body is not a readable Parquet file: {_one_line(error)}") from None
    return _batch_of(table, columns)


def _check_columns(schema: Any) -> list[str]:
    """The canonical name of each column; refuses the columns as CSV's header is refused,
    and any column whose type cannot hold what it names."""
    if len(schema) > _MAX_COLUMNS:
        raise InvalidInput(
            f"the table has {len(schema)} columns, more than {_MAX_COLUMNS}; "
            f"expected {', '.join(FEATURES)}, optionally customer_key",
            details=[detail(None, "too_many_columns", f"at most {_MAX_COLUMNS} columns")],
        )
    columns = [canonical_column_name(field.name) for field in schema]
    counts = Counter(columns)
    missing = [name for name in FEATURES if name not in counts]
    unknown = [
        name for name in counts if name not in FEATURES and name not in {CUSTOMER_KEY, ROW_NUMBER}
    ]
    repeated = sorted(name for name, count in counts.items() if count > 1)
    details = [detail(name, "missing", f"column {name} is required") for name in missing]
    details += [detail(name, "extra_forbidden", f"column {name} is not known") for name in unknown]
    details += [detail(name, "duplicate", f"column {name} appears twice") for name in repeated]
    if details:
        raise InvalidInput(
            "the table's columns are not the customer features "
            f"(expected {', '.join(FEATURES)}, optionally customer_key)",
            details=details,
        )
    wrong = [
        detail(name, "column_type", f"column {name} is of type {field.type}; {rule}")
        for name, field in zip(columns, schema, strict=True)
        if (rule := _type_rule(name, field.type)) is not None
    ]
    if wrong:
        raise InvalidInput(
            "some columns are not of a type they can be read as: "
            + "; ".join(item["message"] for item in wrong),
            details=wrong,
        )
    return columns


def _type_rule(name: str, data_type: Any) -> str | None:
    """What type the column ``name`` should be, when ``data_type`` is not one of them.

    An optional column may be of the null type (all null: what pandas makes of a column of
    None); the row count it claims is the batch's, checked like any other.
    """
    import pyarrow as arrow

    numeric = arrow.types.is_integer(data_type) or arrow.types.is_floating(data_type)
    if name in FEATURES:
        readable = numeric or arrow.types.is_decimal(data_type)
        return None if readable else "expected integers, floating-point or decimal numbers"
    text = arrow.types.is_string(data_type) or arrow.types.is_large_string(data_type)
    empty = arrow.types.is_null(data_type)
    if name == CUSTOMER_KEY:
        is_integer = arrow.types.is_integer(data_type)
        return None if text or is_integer or empty else "expected text or integers"
    return None if text or numeric or empty else "expected numbers or text (it is not read)"


def _batch_of(table: Any, columns: list[str]) -> CustomerBatch:
    """The table's rows as a batch: screened at once, the rest validated row by row."""
    size = table.num_rows
    place = {name: position for position, name in enumerate(columns)}
    feature_columns = [table.column(place[name]) for name in FEATURES]
    # Column-major: each column is written, and screened, as one contiguous run.
    features = np.empty((size, len(FEATURES)), dtype=np.float64, order="F")
    for position, column in enumerate(feature_columns):
        # The column as it is (its nulls as NaN, which screening refuses like any value out
        # of bounds), converted to float by numpy as it is copied in.
        features[:, position] = (
            _decimals_as_floats(column) if _is_decimal(column) else column.to_numpy()
        )
    keys: list[str | None] = (
        _keys(table.column(place[CUSTOMER_KEY])) if CUSTOMER_KEY in place else [None] * size
    )
    good = within_bounds(features)
    if keys.count(None) != size:
        good &= np.array([key is None or could_be_customer_key(key) for key in keys], dtype=bool)
    if good.all():
        return CustomerBatch(size=size, features=features, keys=keys, positions=list(range(size)))
    kept = np.flatnonzero(good).tolist()
    leftovers = np.flatnonzero(~good).tolist()
    screened = Screened(
        positions=kept,
        features=features[good],
        keys=[keys[row] for row in kept],
        leftovers=leftovers,
    )
    items = _items(feature_columns, keys, leftovers, size)
    # A row with a key and no features is missing them (not a look-up): as in CSV.
    return validate_items(items, screened=screened, by_key=False)


def _is_decimal(column: Any) -> bool:
    import pyarrow as arrow

    return bool(arrow.types.is_decimal(column.type))


def _decimals_as_floats(column: Any) -> npt.NDArray[np.float64]:
    """A decimal column (a database's NUMERIC: credit limits as 12,500.00) as the floats that
    CSV reads from the same text, nulls as NaN: through the decimals' exact text, which
    Arrow reads as the nearest float (its cast from decimal straight to float is not: it
    gave another float for 151 of 2,000 random decimal(38, 20) values)."""
    import pyarrow as arrow
    import pyarrow.compute as compute

    as_text = compute.cast(column, arrow.string())
    floats: npt.NDArray[np.float64] = compute.cast(as_text, arrow.float64()).to_numpy(
        zero_copy_only=False
    )
    return floats


def _keys(column: Any) -> list[str | None]:
    """Each row's key as CSV reads its cell: text with the blanks around it stripped, an
    integer as its digits; None where there is none."""
    import pyarrow as arrow
    import pyarrow.compute as compute

    if arrow.types.is_integer(column.type):
        column = compute.cast(column, arrow.string())
    if not arrow.types.is_dictionary(column.type):
        return [_key_text(key) for key in column.to_pylist()]
    keys: list[str | None] = []
    for chunk in column.chunks:  # each text once, shared by the rows that name it
        # A key past the limit is refused for its length: a few of its characters past
        # the limit are enough to say so, and a long text that a dictionary page holds
        # once is not then validated again on every row that names it.
        texts = [_shortened(_key_text(key)) for key in chunk.dictionary.to_pylist()]
        keys += [None if at is None else texts[at] for at in chunk.indices.to_pylist()]
    return keys


def _key_text(key: str | None) -> str | None:
    return (key.strip() or None) if key is not None else None


def _shortened(key: str | None) -> str | None:
    return key[: CUSTOMER_KEY_MAX_LENGTH + 1] if key is not None else None


def _items(
    feature_columns: list[Any], keys: list[str | None], rows: list[int], size: int
) -> list[dict[str, Any] | None]:
    """The rows screening left over as items, each value as a CSV cell holding it would
    be read: a null is left out (the field is then missing), a NaN or an infinity is the
    text it is written as, which validation refuses as CSV's ``nan`` and ``inf``."""
    import pyarrow as arrow

    at = arrow.array(rows, type=arrow.int64())
    values = [column.take(at).to_pylist() for column in feature_columns]
    items: list[dict[str, Any] | None] = [None] * size
    for place, row in enumerate(rows):
        item: dict[str, Any] = {}
        key = keys[row]
        if key is not None:
            item[CUSTOMER_KEY] = key
        for name, column in zip(FEATURES, values, strict=True):
            value = column[place]
            if value is None:
                continue
            if isinstance(value, Decimal):
                value = float(value)  # as screening read it (see _decimals_as_floats)
            if isinstance(value, float) and not math.isfinite(value):
                value = str(value)
            item[name] = value
        items[row] = item
    return items


def _malformed(message: str) -> MalformedBody:
    return MalformedBody(message, details=[detail(None, "body_unreadable", message)])


def _too_large(message: str, max_size: int) -> BatchTooLarge:
    return BatchTooLarge(
        message, details=[detail("customers", "max_length", f"at most {max_size} customers")]
    )


def _one_line(error: BaseException) -> str:
    """pyarrow's message, first line only and bounded (some quote a whole buffer)."""
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]
