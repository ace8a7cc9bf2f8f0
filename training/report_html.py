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
_STYLE: Final = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:0;
background:#f6f7f9;color:#1d232b;line-height:1.5}
main{max-width:1100px;margin:0 auto;padding:1.5rem}
section,header{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:1rem 1.5rem;
margin-bottom:1.25rem}
h1{margin:.2rem 0 .8rem}h2{margin-top:.2rem;border-bottom:1px solid #dde1e6;padding-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.92rem}
th,td{border:1px solid #dde1e6;padding:.25rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}thead th{background:#eef1f4}
tr.chosen td{background:#fff6d9;font-weight:600}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0}
dl.facts dt{font-weight:600}dl.facts dd{margin:0;overflow-wrap:anywhere}
img{max-width:100%;height:auto}figure{margin:.5rem 0}figcaption{font-size:.85rem;color:#555}
.row{display:flex;flex-wrap:wrap;gap:1rem}.row>*{flex:1 1 420px}
article.segment{border:1px solid #dde1e6;border-left:8px solid;border-radius:6px;
padding:.5rem 1rem;margin:1rem 0}
.swatch{display:inline-block;width:.9em;height:.9em;border-radius:2px;margin-right:.4em}
.meta{color:#555}.na{color:#8a8f98;font-style:italic}code{overflow-wrap:anywhere}
.ok{color:#1a7f37;font-weight:700}.not-ok{color:#b42318;font-weight:700}
"""
"""The pages' one style sheet (the model card's and the comparison's)."""
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


def page(title: str, body: str) -> str:
    """A complete, self-contained HTML document; ``title`` and ``body`` already escaped."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}</main>\n</body>\n</html>\n"
    )
