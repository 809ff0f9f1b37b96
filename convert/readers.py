"""Recorded telemetry read in chunks: CSV with a header, Parquet, JSON Lines.

pyarrow reads all three (it is the Python ecosystem's reader for Parquet, and its CSV reader is
multi-threaded and streams): a chunk is at most ``chunk_rows`` rows (Parquet, JSON Lines) or
one 4 MiB block (CSV), so a file larger than memory passes through in bounded memory.
CSV feature columns are read as text and parsed by ``convert.columns``, so one bad cell drops
its row instead of failing the file; a CSV row with the wrong number of fields is counted as
malformed and skipped. JSON Lines are decoded with msgspec, one line per row.

CSV and JSON Lines must be UTF-8 text: the head of the file is checked before pyarrow sees it
(a UTF-16 export, a binary file named .csv), and a malformed row deeper in the file that is not
UTF-8 refuses the file with a message instead of pyarrow's "Exception ignored" traceback (its
invalid-row callback decodes the row as UTF-8 before our handler runs).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from convert.columns import MISSING, NOT_A_NUMBER, is_numeric_arrow_type, numbers

FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
BLOCK_BYTES = 4 * 1024 * 1024  # larger blocks read no faster and cost memory
CHUNK_ROWS = 262_144
HEAD_BYTES = 64 * 1024  # how much of a text file is checked to be UTF-8 before reading it
# Byte-order marks of the encodings a spreadsheet may export "Unicode text" in.
_BYTE_ORDER_MARKS = {
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}
# A NUL byte in a row makes that row unusable; this many in the head is not a text file.
MAX_NUL_SHARE = 0.01


class DataError(Exception):
    """The data cannot be used; the message says why, in one line (exit status 2)."""


@dataclass
class Chunk:
    """Some rows of the columns asked for; ``malformed``: rows skipped before this chunk."""

    columns: dict[str, Any]
    rows: int
    malformed: int = 0


def detect_format(path: Path, given: str | None = None) -> str:
    if given:
        if given not in set(FORMATS.values()):
            raise DataError(f"unknown format {given!r}; use csv, parquet or jsonl")
        return given
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{path.name}: unknown format (extension {path.suffix or 'none'}); name the file "
            f"*.csv, *.parquet or *.jsonl, or pass --format csv|parquet|jsonl"
        )
    return fmt


@dataclass
class Reader:
    """One data file: its columns, which look numeric, and its rows in chunks."""

    path: Path
    format: str
    chunk_rows: int = CHUNK_ROWS
    columns: list[str] = field(default_factory=list)
    numeric: set[str] = field(default_factory=set)
    malformed: int = 0

    @classmethod
    def open(cls, path: Path, fmt: str | None = None, chunk_rows: int = CHUNK_ROWS) -> Reader:
        if not path.exists():
            raise DataError(f"{path}: no such file")
        if not path.is_file():
            raise DataError(f"{path}: not a file")
        try:
            with open(path, "rb") as handle:
                handle.read(1)
        except OSError as exc:
            raise DataError(f"{path}: cannot read: {exc.strerror}") from None
        reader = cls(path, detect_format(path, fmt), chunk_rows)
        if reader.format != "parquet":
            check_utf8_text(path)
        try:
            reader._inspect()
        except DataError:
            raise
        except Exception as exc:  # pyarrow's errors for a file that is not what it claims
            raise DataError(
                f"{path.name}: not a readable {reader.format} file: {_short(exc)}"
            ) from None
        return reader

    def _inspect(self) -> None:
        """Column names, and which columns hold numbers (judged on the first block)."""
        if self.format == "parquet":
            import pyarrow.parquet as pq

            schema = pq.ParquetFile(self.path).schema_arrow
            self.columns = list(schema.names)
            self.numeric = {f.name for f in schema if is_numeric_arrow_type(f.type)}
        elif self.format == "csv":
            import pyarrow as pa
            import pyarrow.csv as pcsv

            with (
                undecodable_rows_refused(self.path),
                pcsv.open_csv(
                    self.path,
                    read_options=pcsv.ReadOptions(block_size=1 << 20),
                    parse_options=pcsv.ParseOptions(invalid_row_handler=lambda row: "skip"),
                ) as stream,
            ):
                names = list(stream.schema.names)
            with (
                undecodable_rows_refused(self.path),
                pcsv.open_csv(
                    self.path,
                    read_options=pcsv.ReadOptions(block_size=1 << 20),
                    parse_options=pcsv.ParseOptions(invalid_row_handler=lambda row: "skip"),
                    convert_options=pcsv.ConvertOptions(
                        column_types=dict.fromkeys(names, pa.string()),
                        strings_can_be_null=True,
                        null_values=[""],
                    ),
                ) as stream,
            ):
                first = next(iter(stream), None)
            self.columns = names
            if first is not None:
                self.numeric = {n for n in names if mostly_numbers(first.column(n))}
        else:
            chunk = next(self._jsonl_chunks(None, limit=1000), None)
            if chunk is None:
                self.columns = []
                return
            self.columns = list(chunk.columns)
            self.numeric = {n for n, values in chunk.columns.items() if mostly_numbers(values)}

    def chunks(self, names: list[str]) -> Iterator[Chunk]:
        """The columns ``names`` (each present in the file), chunk by chunk."""
        try:
            if self.format == "parquet":
                yield from self._parquet_chunks(names)
            elif self.format == "csv":
                yield from self._csv_chunks(names)
            else:
                yield from self._jsonl_chunks(names)
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"{self.path.name}: reading failed: {_short(exc)}") from None

    def _parquet_chunks(self, names: list[str]) -> Iterator[Chunk]:
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(self.path)
        for batch in parquet.iter_batches(batch_size=self.chunk_rows, columns=names):
            yield Chunk({n: batch.column(n) for n in names}, batch.num_rows)

    def _csv_chunks(self, names: list[str]) -> Iterator[Chunk]:
        import pyarrow as pa
        import pyarrow.csv as pcsv

        skipped = 0

        def skip(row: Any) -> str:
            nonlocal skipped
            skipped += 1
            return "skip"

        with (
            undecodable_rows_refused(self.path),
            pcsv.open_csv(
                self.path,
                read_options=pcsv.ReadOptions(block_size=BLOCK_BYTES),
                parse_options=pcsv.ParseOptions(invalid_row_handler=skip),
                convert_options=pcsv.ConvertOptions(
                    include_columns=names,
                    column_types=dict.fromkeys(names, pa.string()),
                    strings_can_be_null=True,
                    null_values=[""],
                ),
            ) as stream,
        ):
            for batch in stream:
                malformed, skipped = skipped, 0
                yield Chunk({n: batch.column(n) for n in names}, batch.num_rows, malformed)
        if skipped:
            yield Chunk({n: pa.array([], pa.string()) for n in names}, 0, skipped)

    def _jsonl_chunks(self, names: list[str] | None, limit: int | None = None) -> Iterator[Chunk]:
        decode = msgspec.json.Decoder().decode
        size = limit or self.chunk_rows
        columns: dict[str, list[Any]] = {n: [] for n in names or []}
        rows = malformed = 0
        with open(self.path, "rb") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    record = decode(line)
                except msgspec.DecodeError:
                    record = None
                if not isinstance(record, dict):
                    malformed += 1
                    continue
                if names is None:  # inspecting: every key seen becomes a column
                    for key in record:
                        columns.setdefault(key, [None] * rows)
                for name, values in columns.items():
                    values.append(record.get(name))
                rows += 1
                if rows == size:
                    yield Chunk(columns, rows, malformed)
                    if limit is not None:
                        return
                    columns = {n: [] for n in columns}
                    rows = malformed = 0
        if rows or malformed:
            yield Chunk(columns, rows, malformed)


def mostly_numbers(column: Any) -> bool:
    """Whether a column's present values are numbers, but for a few bad cells (at most half):
    such a column is a feature, and its bad cells drop their rows (counted, not hidden)."""
    _, reasons = numbers(column)
    present = reasons != MISSING
    return bool(present.any()) and float((reasons[present] == NOT_A_NUMBER).mean()) <= 0.5


def check_utf8_text(path: Path) -> None:
    """Refuse a CSV or JSON Lines file whose head is not UTF-8 text, saying what it is."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None
    for mark, encoding in _BYTE_ORDER_MARKS.items():
        if head.startswith(mark):
            raise DataError(
                f"{path.name}: {encoding} text (it starts with a {encoding} byte-order mark); "
                f"save it as UTF-8"
            )
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A character cut by the end of the head is not an error.
        if not (len(head) == HEAD_BYTES and exc.start >= len(head) - 3):
            raise DataError(
                f"{path.name}: not UTF-8 text (byte 0x{head[exc.start]:02x} at offset "
                f"{exc.start}); is it really a text file?"
            ) from None
    if head and head.count(0) > MAX_NUL_SHARE * len(head):
        raise DataError(
            f"{path.name}: not text ({head.count(0)} NUL bytes in its first {len(head)}); "
            f"UTF-16 without a byte-order mark, or a binary file?"
        )


class _UndecodableRow:
    """sys.unraisablehook while pyarrow reads a CSV: the UnicodeDecodeError its invalid-row
    callback raises is noted here instead of printed as "Exception ignored"."""

    def __init__(self, previous: object) -> None:
        self.previous = previous
        self.seen = False

    def __call__(self, unraisable: sys.UnraisableHookArgs) -> None:
        if isinstance(unraisable.exc_value, UnicodeDecodeError):
            self.seen = True
        elif callable(self.previous):
            self.previous(unraisable)


@contextlib.contextmanager
def undecodable_rows_refused(path: Path) -> Iterator[None]:
    """Within the block, a malformed CSV row that is not UTF-8 refuses the file (DataError)."""
    hook = _UndecodableRow(sys.unraisablehook)
    sys.unraisablehook = hook
    try:
        yield
    except Exception:
        if hook.seen:
            raise DataError(f"{path.name}: a malformed row is not UTF-8 text") from None
        raise
    finally:
        sys.unraisablehook = hook.previous  # type: ignore[assignment]
    if hook.seen:
        raise DataError(f"{path.name}: a malformed row is not UTF-8 text")


def _short(exc: BaseException) -> str:
    """The first line of an error, without control characters or undecodable bytes (a parse
    error quotes the row it failed on)."""
    text = str(exc).strip().splitlines()
    if not text:
        return type(exc).__name__
    line = "".join(c if c.isprintable() and c != "\ufffd" else "?" for c in text[0])
    return line[:300]
