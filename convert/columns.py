"""Column chunks to float64 values, with the reason each unusable value is unusable.

A chunk of one column arrives as an Arrow array (CSV, Parquet) or a list of Python values
(JSON Lines). Each becomes a float64 array and a reason code per row, without a Python loop
per value for Arrow input:

- ``MISSING``: null, an empty cell, or a common missing marker (``NA``, ``N/A``, ``null``);
- ``NOT_A_NUMBER``: text that is not a decimal number (``abc``, ``1,5``, ``0x10``), or a value
  of another type (a boolean, a list);
- ``NON_FINITE``: NaN or an infinity, written as such or overflowing float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

OK, MISSING, NOT_A_NUMBER, NON_FINITE, BAD_LABEL = 0, 1, 2, 3, 4
REASONS = {
    MISSING: "missing",
    NOT_A_NUMBER: "not_a_number",
    NON_FINITE: "non_finite",
    BAD_LABEL: "bad_label",
}
MISSING_MARKERS = ("", "NA", "N/A", "n/a", "na", "null", "NULL", "None", "none")
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_NON_FINITE_TEXT = r"^[+-]?(inf|infinity|nan)$"
_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}


def _arrow_numbers(array: Any) -> tuple[np.ndarray, np.ndarray]:
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    kind = array.type
    reasons = np.zeros(len(array), dtype=np.uint8)
    if pa.types.is_null(kind):
        return np.full(len(array), np.nan), reasons + MISSING
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = pc.utf8_trim_whitespace(array)
        missing = pc.or_kleene(pc.is_null(text), pc.is_in(text, pa.array(MISSING_MARKERS)))
        number = pc.match_substring_regex(text, _NUMBER)
        non_finite_text = pc.match_substring_regex(text, _NON_FINITE_TEXT, ignore_case=True)
        parseable = pc.and_(pc.invert(pc.fill_null(missing, True)), pc.or_(number, non_finite_text))
        parseable = pc.fill_null(parseable, False)
        values = pc.cast(pc.if_else(parseable, text, None), pa.float64()).to_numpy(
            zero_copy_only=False
        )
        missing_np = pc.fill_null(missing, True).to_numpy(zero_copy_only=False)
        parseable_np = parseable.to_numpy(zero_copy_only=False)
        reasons[~parseable_np] = NOT_A_NUMBER
        reasons[missing_np] = MISSING
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        values = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
        nulls = array.is_null().to_numpy(zero_copy_only=False)
        reasons[nulls] = MISSING
    else:  # booleans, timestamps, lists, structs: not measurements
        values = np.full(len(array), np.nan)
        reasons[:] = NOT_A_NUMBER
        reasons[array.is_null().to_numpy(zero_copy_only=False)] = MISSING
    values = np.asarray(values, dtype=np.float64)
    reasons[(reasons == OK) & ~np.isfinite(values)] = NON_FINITE
    return values, reasons


def _python_number(value: Any) -> tuple[float, int]:
    if value is None:
        return np.nan, MISSING
    if isinstance(value, bool):
        return np.nan, NOT_A_NUMBER
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if text in MISSING_MARKERS:
            return np.nan, MISSING
        try:
            number = float(text)
        except ValueError:
            return np.nan, NOT_A_NUMBER
        if "_" in text or text.lower().startswith(("0x", "-0x", "+0x")):
            return np.nan, NOT_A_NUMBER
    else:
        return np.nan, NOT_A_NUMBER
    return (number, OK) if np.isfinite(number) else (number, NON_FINITE)


def numbers(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """float64 values and a reason code per row (OK where the value is usable)."""
    if isinstance(column, list):
        pairs = [_python_number(value) for value in column]
        values = np.fromiter((v for v, _ in pairs), dtype=np.float64, count=len(pairs))
        reasons = np.fromiter((r for _, r in pairs), dtype=np.uint8, count=len(pairs))
        return values, reasons
    return _arrow_numbers(column)


def _label(value: Any) -> int:
    """0 normal, 1 anomaly, -1 unreadable. An empty label is a row nobody flagged: normal."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float) and value in (0, 1):
        return int(value)
    text = str(value).strip().lower()
    if text in MISSING_MARKERS or text == "":
        return 0
    if text in _TRUE or text in {"1.0"}:
        return 1
    if text in _FALSE or text in {"0.0"}:
        return 0
    return -1


def labels(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """Known anomalies (bool) and a reason code per row (BAD_LABEL where unreadable).

    1/0, true/false, yes/no (any case); an empty label is a row nobody flagged: normal."""
    if isinstance(column, list):
        codes = np.fromiter(map(_label, column), dtype=np.int8, count=len(column))
    else:
        codes = _arrow_labels(column)
    reasons = np.where(codes < 0, BAD_LABEL, OK).astype(np.uint8)
    return codes == 1, reasons


def _arrow_labels(array: Any) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    kind = array.type
    if pa.types.is_boolean(kind):
        return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), np.int8)
    if is_numeric_arrow_type(kind):
        values = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
        codes = np.where(values == 1, 1, np.where(values == 0, 0, -1)).astype(np.int8)
        codes[array.is_null().to_numpy(zero_copy_only=False)] = 0
        return codes
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = pc.utf8_lower(pc.utf8_trim_whitespace(array))
        true = pc.fill_null(pc.is_in(text, pa.array(sorted(_TRUE | {"1.0"}))), False)
        false = pc.fill_null(
            pc.is_in(
                text, pa.array(sorted(_FALSE | {"0.0"} | {m.lower() for m in MISSING_MARKERS}))
            ),
            True,
        )
        true_np = true.to_numpy(zero_copy_only=False)
        false_np = false.to_numpy(zero_copy_only=False)
        return np.where(true_np, 1, np.where(false_np, 0, -1)).astype(np.int8)
    return np.fromiter(map(_label, array.to_pylist()), dtype=np.int8, count=len(array))


def is_numeric_arrow_type(kind: Any) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    )
