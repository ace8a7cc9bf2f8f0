"""Building blocks of the model card's HTML: escaping, number formats, tables, lists.

Every value that comes from the data or the playbook goes through :func:`esc` (or a
formatter that calls it); labels and markup written here do not.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Final

from segmentation.features import FEATURE_LABELS

NOT_AVAILABLE: Final = '<span class="na">not available</span>'
_MONEY_FEATURES: Final = frozenset({"avg_credit_limit"})
_CURRENCY: Final = ""  # the export does not say which currency; amounts stay plain


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: float | int | str | None, spec: str = ",.2f") -> str:
    """A number formatted with ``spec``, text escaped; None or not finite: "not available"."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return NOT_AVAILABLE
    if isinstance(value, str):
        return esc(value)
    return esc(format(float(value), spec))


def percent(value: float) -> str:
    return fmt(value * 100, ".1f") + "%"


def is_money(feature: str) -> bool:
    return feature in _MONEY_FEATURES


def feature_value(feature: str, value: float, spec: str) -> str:
    """A feature's value in its own units: money without decimals, counts by ``spec``."""
    if is_money(feature) and math.isfinite(value):
        return esc(f"{_CURRENCY}{value:,.0f}")
    return fmt(value, spec)


def label(feature: str) -> str:
    """How a banker reads a feature (``avg_credit_limit`` -> ``average credit limit``)."""
    return FEATURE_LABELS.get(feature, feature)


def facts(rows: Iterable[tuple[str, str]]) -> str:
    """A definition list; labels are ours, values must already be escaped."""
    items = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    return f'<dl class="facts">{items}</dl>\n'


def table(head: Sequence[str], rows: Iterable[Sequence[str]], *, chosen_row: int = -1) -> str:
    """A table; cells must already be escaped. ``chosen_row`` is highlighted."""
    header = "".join(f"<th>{cell}</th>" for cell in head)
    body = "".join(
        ('<tr class="chosen">' if number == chosen_row else "<tr>")
        + "".join(f"<td>{cell}</td>" for cell in row)
        + "</tr>"
        for number, row in enumerate(rows)
    )
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>\n"


def bullets(items: Sequence[str]) -> str:
    if not items:
        return "<p>none</p>"
    return "<ul>" + "".join(f"<li>{esc(item)}</li>" for item in items) + "</ul>\n"


def section(anchor: str, title: str, content: str) -> str:
    return f'<section id="{anchor}">\n<h2>{title}</h2>\n{content}</section>\n'
