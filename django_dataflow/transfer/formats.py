"""Streaming readers of csv, jsonl and json files: one row at a time, with where it starts.

Each reader holds one row (and the file's read buffer) in memory, whatever the file's size. A
JSON array is read with ijson (an incremental parser, the json extra): Python's json module reads
a whole document at once. ijson reports no line numbers, so rows of a .json file are located by
their element number in the array.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from typing import IO, Any, NamedTuple

from django_dataflow.transfer.errors import BadRow, UsageError

FORMATS = ("csv", "jsonl", "json")
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}


class SourceRow(NamedTuple):
    """One row of the input: its position, its values (None when malformed) and why not."""

    line: int
    values: dict[str, Any] | None
    raw: Any
    problem: str | None = None


def format_of(path: str, given: str | None) -> str:
    """The format named by --format, else by the file's extension."""
    if given:
        if given not in FORMATS:
            raise UsageError(f"unknown format {given!r}; valid: {', '.join(FORMATS)}")
        return given
    if path == "-":
        raise UsageError("reading standard input needs --format (csv, jsonl or json)")
    extension = os.path.splitext(path)[1].lower()
    if extension not in _EXTENSIONS:
        raise UsageError(
            f"cannot tell the format of {path!r} from its extension; use .csv, .jsonl or .json, or --format"
        )
    return _EXTENSIONS[extension]


def unit_of(fmt: str) -> str:
    """How rows of a format are located in messages: 'line' or 'element'."""
    return "element" if fmt == "json" else "line"


class Reader:
    """Iterates the rows of one open binary file; position() is the bytes read so far."""

    def __init__(self, binary: IO[bytes], fmt: str, *, encoding: str = "utf-8-sig") -> None:
        self.binary = binary
        self.fmt = fmt
        self.encoding = encoding
        self.unit = unit_of(fmt)
        self.header: list[str] | None = None

    def position(self) -> int | None:
        """Bytes of the file consumed (read-ahead included), or None for a pipe."""
        try:
            return self.binary.tell()
        except (OSError, ValueError):
            return None

    def __iter__(self) -> Iterator[SourceRow]:
        return {"csv": self._csv, "jsonl": self._jsonl, "json": self._json}[self.fmt]()

    def _text_lines(self) -> Iterator[str]:
        """The file's lines decoded one by one, so that a decoding error names its line."""
        # utf-8-sig strips a byte order mark, which only the first line can start with.
        later = "utf-8" if self.encoding == "utf-8-sig" else self.encoding
        for number, data in enumerate(self.binary, start=1):
            try:
                yield data.decode(self.encoding if number == 1 else later)
            except UnicodeDecodeError as exc:
                message = f"line {number}: not valid {self.encoding} text ({exc.reason})"
                raise BadRow(message, line=number) from None

    def _csv(self) -> Iterator[SourceRow]:
        reader = csv.reader(self._text_lines())
        try:
            self.header = next(reader, None)
            if self.header is None:
                return
            size = len(self.header)
            twice = sorted({name for name in self.header if self.header.count(name) > 1})
            if twice:
                raise BadRow(f"line 1: the header names column {twice[0]!r} twice", line=1)
            line = reader.line_num + 1
            for cells in reader:
                start, line = line, reader.line_num + 1
                if not cells:
                    continue  # a blank line
                if len(cells) != size:
                    problem = f"has {len(cells)} fields, the header has {size}"
                    yield SourceRow(start, None, cells, problem)
                    continue
                yield SourceRow(start, dict(zip(self.header, cells, strict=True)), cells)
        except csv.Error as exc:
            raise BadRow(f"line {reader.line_num}: {exc}", line=reader.line_num) from None

    def _jsonl(self) -> Iterator[SourceRow]:
        # utf-8-sig strips a byte order mark, which only the first line can start with.
        later = "utf-8" if self.encoding == "utf-8-sig" else self.encoding
        for number, data in enumerate(self.binary, start=1):
            try:
                text = data.decode(self.encoding if number == 1 else later)
            except UnicodeDecodeError as exc:
                raw = data.decode("utf-8", "replace")
                yield SourceRow(number, None, raw, f"not valid {later} text ({exc.reason})")
                continue
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                yield SourceRow(number, None, text.rstrip("\r\n"), f"not valid JSON ({exc.msg})")
                continue
            if not isinstance(value, dict):
                yield SourceRow(number, None, value, f"must be a JSON object, not {type(value).__name__}")
                continue
            yield SourceRow(number, value, value)

    def _json(self) -> Iterator[SourceRow]:
        try:
            import ijson
        except ImportError:
            raise UsageError(
                "reading .json arrays needs ijson: pip install 'django-dataflow[import]' "
                "(or convert the file to .jsonl, one object per line)"
            ) from None
        first = self._first_byte()
        if first is None:
            return
        if first != b"[":
            raise BadRow("element 1: a .json file must hold one JSON array of objects", line=1)
        number = 0
        try:
            for number, value in enumerate(ijson.items(self.binary, "item", use_float=True), start=1):
                if not isinstance(value, dict):
                    yield SourceRow(number, None, value, f"must be a JSON object, not {type(value).__name__}")
                    continue
                yield SourceRow(number, value, value)
        except ijson.JSONError as exc:
            # An incremental parser cannot resynchronise after broken syntax: the rest is unreadable.
            where = number + 1
            raise BadRow(f"element {where}: not valid JSON ({exc})", line=where) from None

    def _first_byte(self) -> bytes | None:
        """The first non-blank byte, left unread (peeked)."""
        peek = getattr(self.binary, "peek", None)
        while True:
            chunk = peek(64) if peek else b""
            if not chunk:
                if peek is None:
                    raise UsageError(".json input must be a seekable or buffered file")
                return None
            stripped = chunk.lstrip(b" \t\r\n\xef\xbb\xbf")
            if stripped:
                return stripped[:1]
            self.binary.read(len(chunk))


def open_binary(path: str) -> IO[bytes]:
    """The file (or standard input for '-') opened for buffered binary reading."""
    if path == "-":
        import sys

        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as exc:
        raise UsageError(f"cannot read {path!r}: {exc.strerror}") from None
