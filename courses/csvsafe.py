"""CSV files that a spreadsheet opens as data, never as formulas.

Every CSV the exchange writes (rosters now, grades later) goes through ``formula_safe`` or
``write_rows``: a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return gets a leading single quote, as OWASP's "CSV Injection" page recommends, so a name
such as ``=HYPERLINK("http://evil.example", "Click")`` shows as text in Excel, LibreOffice
or Google Sheets instead of running. ``unescape_cell`` undoes it when the exchange reads
back a file it wrote, so an export imports unchanged.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, Protocol

# OWASP: cells beginning with these are read as formulas (tab and CR too, because some
# spreadsheets strip leading whitespace before looking at the first character).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def formula_safe(value: object) -> str:
    """The cell as text, with a leading ``'`` when a spreadsheet would take it as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_TRIGGERS):
        return QUOTE + text
    return text


def unescape_cell(text: str) -> str:
    """A cell read from a file ``formula_safe`` wrote, as it was before (idempotent)."""
    if text.startswith(QUOTE) and text[1:].startswith(FORMULA_TRIGGERS):
        return text[1:]
    return text


def write_rows(out: _Writable, rows: Iterable[Iterable[object]]) -> None:
    """Write rows as CSV to ``out``, every cell made formula-safe."""
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow([formula_safe(value) for value in row])
