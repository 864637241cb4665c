"""CSV as spreadsheets write it, for every import (roster, targets, activity). Pure.

What French Excel saves is not what programs write: ``;`` between values (the comma is the
decimal mark), Windows-1252 rather than UTF-8 (or UTF-8 with a byte order mark), and numbers
like ``1 234,5``. Every import takes all of them:

- ``decode``: UTF-8 with or without a BOM, else Windows-1252 (every byte means something there,
  so a file that is not UTF-8 is read as what Excel in France writes);
- ``delimiter``: ``,`` or ``;``, whichever the header row uses (a tab too);
- ``number``: ``1234.5``, ``1234,5``, ``1 234,5``, ``1.234,5``, ``1,234.5`` all read 1234.5.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

DELIMITERS = (";", ",", "\t")
_GROUPING = re.compile(r"[\s\u00a0\u202f']")  # spaces, no-break spaces, apostrophes


class NotText(ValueError):
    """The body is no text an import can read."""


def decode(body: bytes) -> str:
    """The text of ``body``: UTF-8 (a BOM, if any, removed), else Windows-1252."""
    if body.startswith(b"\xef\xbb\xbf"):
        return body[3:].decode("utf-8", errors="strict")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return body.decode("cp1252")
    except UnicodeDecodeError as exc:  # 5 bytes cp1252 leaves undefined
        raise NotText(f"neither UTF-8 nor Windows-1252 text (byte {exc.start})") from None


def delimiter(text: str) -> str:
    """The delimiter the header row uses: the most frequent of ``;``, ``,`` and tab outside
    quotes (``,`` when there is none: a one-column file)."""
    header = text.split("\n", 1)[0]
    unquoted = re.sub(r'"[^"]*"', "", header)
    counts = {d: unquoted.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """Each row of the CSV ``text`` with the number of the line it ends on (a quoted value
    may span lines); blank rows left out. ``csv.Error`` for a malformed file."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter(text))
    for cells in reader:
        if any(cell.strip() for cell in cells):
            yield reader.line_num, cells


def number(text: str, decimal_comma: bool = True) -> str:
    """A number as a spreadsheet may write it, as a program reads it (``1 234,5`` ->
    ``1234.5``); text that is no number comes back unchanged, for the caller to refuse.

    With both ``,`` and ``.``, the last one is the decimal mark. A lone ``,`` is the decimal
    mark (French), unless ``decimal_comma`` is off (a comma-separated file, in which a quoted
    ``1,234`` groups thousands) and three digits follow it."""
    value = _GROUPING.sub("", text.strip())
    if "," in value and "." in value:
        if value.rfind(",") > value.rfind("."):
            value = value.replace(".", "").replace(",", ".")
        else:
            value = value.replace(",", "")
    elif value.count(",") == 1:
        grouping = not decimal_comma and re.fullmatch(r"[+-]?\d{1,3},\d{3}", value)
        value = value.replace(",", "" if grouping else ".")
    elif value.count(",") > 1:
        value = value.replace(",", "")
    return value if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", value) else text
