"""The customer features the model uses and the names the bank's exports give them."""

from __future__ import annotations

import re

FEATURES: tuple[str, ...] = (
    "avg_credit_limit",
    "total_credit_cards",
    "total_visits_bank",
    "total_visits_online",
    "total_calls_made",
)
"""The five behaviour features, in the order the model sees them."""

COUNT_FEATURES: frozenset[str] = frozenset(FEATURES[1:])
"""Features that count events and so must be whole numbers."""

CUSTOMER_KEY = "customer_key"
CUSTOMER_KEY_MAX_LENGTH = 64
"""Characters in a customer key at most: what requests may send and the store keeps."""
_NOT_IN_KEYS = (
    r"\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
    r"\ufeff\ufff9-\ufffb"
)
CUSTOMER_KEY_PATTERN = rf"^[^{_NOT_IN_KEYS}]+$"
"""A customer key has no control characters (which a log line or a terminal would obey), no
invisible formatting (bidirectional overrides, zero-width characters, which make a key
display as another) and no line or paragraph separators; letters of any script are fine."""


_BLANK = r"\t\n\v\f\r\x1c-\x1f \x85\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
"""What Python's ``str.strip`` takes away: the blanks around a key that requests may send."""
SENT_CUSTOMER_KEY_PATTERN = (
    rf"^[{_BLANK}]*[^{_NOT_IN_KEYS}{_BLANK}]"
    rf"(?:[^{_NOT_IN_KEYS}]{{0,{CUSTOMER_KEY_MAX_LENGTH - 2}}}[^{_NOT_IN_KEYS}{_BLANK}])?"
    rf"[{_BLANK}]*$"
)
"""A key as a request may send it, for the API document (JSON Schema): the rule above once
surrounding blanks are stripped. Documentation only: the service checks the rule itself.
(Lone surrogates cannot be excluded here: a surrogate range makes the pattern one that
JSON Schema validators written in Rust cannot compile, and they then ignore it.)"""


def could_be_customer_key(text: str) -> bool:
    """Whether ``text`` is a key that requests may send, and so one the store may hold."""
    return 0 < len(text) <= CUSTOMER_KEY_MAX_LENGTH and _KEY.fullmatch(text) is not None


ROW_NUMBER = "sl_no"
"""The export's row number: carried along for messages, never a feature or an identifier."""

BANK_COLUMN_NAMES: dict[str, str] = {
    "Sl_No": ROW_NUMBER,
    "Customer Key": CUSTOMER_KEY,
    "Avg_Credit_Limit": "avg_credit_limit",
    "Total_Credit_Cards": "total_credit_cards",
    "Total_visits_bank": "total_visits_bank",
    "Total_visits_online": "total_visits_online",
    "Total_calls_made": "total_calls_made",
}
"""The bank's export headers, exactly as exported, and the snake_case name of each."""

FEATURE_LABELS: dict[str, str] = {
    "avg_credit_limit": "average credit limit",
    "total_credit_cards": "credit cards held",
    "total_visits_bank": "branch visits",
    "total_visits_online": "online logins",
    "total_calls_made": "calls to the bank",
}
"""How a banker reads each feature, for names, reports and messages."""


def canonical_column_name(name: str) -> str:
    """Map a column header to its snake_case name (bank export or snake_case alike).

    Surrounding whitespace and a byte-order mark are ignored; case, spaces and dashes
    are folded, so ``"Customer Key"``, ``"customer_key"`` and ``"CUSTOMER-KEY"`` agree.
    """
    cleaned = name.replace("\ufeff", "").strip()
    if cleaned in BANK_COLUMN_NAMES:
        return BANK_COLUMN_NAMES[cleaned]
    return re.sub(r"[\s\-]+", "_", cleaned).lower()


_KEY = re.compile(CUSTOMER_KEY_PATTERN)
