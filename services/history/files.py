"""A file of past events as a ``Source``: JSON lines of canonical events, or CSV
(``csv_events``), read a line at a time (a file of millions of events is never held whole).

Which one is read off the first byte that is not blank (after a UTF-8 byte order mark): ``{``
is JSON lines, anything else CSV. CSV as spreadsheets write it (``shared.spreadsheet``): ``,``
``;`` or tab, whichever the header uses; UTF-8 with or without a BOM, else Windows-1252; a
decimal comma in a ``;`` file.

Resuming: the file's checkpoint is found under the hash of its first 64 KiB, and its mark holds
the byte offset reached and the SHA-256 of every byte before it. An import resumes only when
the file still begins with exactly those bytes (more appended since is fine: it goes on with
them); otherwise it starts over from the first line.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from services.history import csv_events
from services.history.loader import Line
from shared import spreadsheet

HEAD_BYTES = 64 * 1024
READ_CHUNK = 1024 * 1024
BOM = codecs.BOM_UTF8


class UnreadableInput(ValueError):
    """The file cannot be read as an import at all (no header a CSV import takes, no file)."""


class FileSource:
    """``path`` as a ``Source``; ``tz``: the zone of CSV times written without an offset."""

    def __init__(self, path: Path, tz: ZoneInfo) -> None:
        self._path, self._tz = path, tz
        try:
            with path.open("rb") as file:
                head = file.read(HEAD_BYTES)
            self._size = path.stat().st_size
        except OSError as exc:
            raise UnreadableInput(f"{path}: {exc.strerror or exc}") from None
        self.key = f"file:{hashlib.sha256(head).hexdigest()[:48]}"
        self.label = str(path.resolve())
        stripped = head.removeprefix(BOM).lstrip()
        self.format = "jsonl" if stripped.startswith(b"{") else "csv"
        self._offset, self._line = 0, 0
        self._hash = hashlib.sha256()

    async def start(self, mark: str | None) -> bool:
        self._offset, self._line, self._hash = 0, 0, hashlib.sha256()
        if mark is None:
            return True
        try:
            found = json.loads(mark)
            offset, line, digest = int(found["offset"]), int(found["line"]), str(found["sha256"])
        except (ValueError, KeyError, TypeError):
            return False
        prefix = self._prefix_hash(offset)
        if prefix is None or prefix.hexdigest() != digest:
            return False
        self._offset, self._line, self._hash = offset, line, prefix
        return True

    def mark(self) -> str:
        return json.dumps(
            {"offset": self._offset, "line": self._line, "sha256": self._hash.hexdigest()}
        )

    def done(self) -> tuple[int, int | None]:
        return self._offset, self._size

    def lines(self) -> Iterator[Line]:
        with self._path.open("rb") as file:
            if self.format == "jsonl":
                file.seek(self._offset)
                yield from self._json_lines(file)
            else:
                yield from self._csv_lines(file)

    def _prefix_hash(self, offset: int) -> Any:
        """The SHA-256 of the file's first ``offset`` bytes (None: the file is shorter)."""
        digest = hashlib.sha256()
        with self._path.open("rb") as file:
            left = offset
            while left:
                chunk = file.read(min(READ_CHUNK, left))
                if not chunk:
                    return None
                digest.update(chunk)
                left -= len(chunk)
        return digest

    def _physical(self, file: IO[bytes]) -> Iterator[bytes]:
        """The file's lines from the current position, counted, hashed and their end noted
        before each is given (so ``mark`` names the position after it)."""
        for raw in file:
            self._offset += len(raw)
            self._line += 1
            self._hash.update(raw)
            yield raw

    def _json_lines(self, file: IO[bytes]) -> Iterator[Line]:
        for raw in self._physical(file):
            text = raw.removeprefix(BOM) if self._line == 1 else raw
            text = text.strip()
            if text:
                yield Line(self._line, text)

    def _csv_lines(self, file: IO[bytes]) -> Iterator[Line]:
        header_raw = file.readline()
        header_text = _decode(header_raw.removeprefix(BOM))
        separator = spreadsheet.delimiter(header_text)
        try:
            names = csv_events.check_header(next(csv.reader([header_text], delimiter=separator)))
        except (StopIteration, csv.Error) as exc:
            raise UnreadableInput(f"{self._path}: no CSV header ({exc})") from None
        except csv_events.BadHeader as exc:
            raise UnreadableInput(f"{self._path}: {exc}") from None
        if self._offset == 0:  # else the header is in the part already hashed and counted
            self._offset, self._line = len(header_raw), 1
            self._hash.update(header_raw)
        file.seek(self._offset)
        decimal_comma = separator == ";"
        text_lines = (_decode(raw) for raw in self._physical(file))
        reader = csv.reader(text_lines, delimiter=separator)
        while True:
            first = self._line + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield Line(first, None, f"not CSV: {exc}")
                continue
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(names):
                reason = f"{len(cells)} values where the header has {len(names)} columns"
                yield Line(first, None, reason)
                continue
            body = csv_events.to_body(dict(zip(names, cells, strict=True)), self._tz, decimal_comma)
            yield Line(first, body)


def _decode(raw: bytes) -> str:
    """A line as text: UTF-8, else Windows-1252 (what French Excel writes)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")
