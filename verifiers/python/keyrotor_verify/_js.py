"""What JavaScript does with JSON values, where a message or a number must agree."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Final

# A field the JSON object lacks: JavaScript's `undefined`, told apart from JSON null.
MISSING: Final = object()


def parse_int(text: str) -> int | float:
    """json.loads' parse_int: an exact int, or ±inf past the largest double.

    JSON.parse reads an integer beyond the largest double as Infinity; int() would keep
    it, or refuse it past 4300 digits. Only the revision is a number in a document.
    """
    as_double = float(text)
    return int(text) if math.isfinite(as_double) else as_double


def refuse_constant(name: str) -> float:
    """json.loads' parse_constant: NaN and Infinity are no JSON; JSON.parse agrees."""
    raise ValueError(f"{name} is not a JSON value")


def number_string(value: float) -> str:
    """ECMAScript's Number::toString: 1.0 is "1", 1e21 is "1e+21", 1e-7 is "1e-7"."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"  # -0 too
    if value < 0:
        return "-" + number_string(-value)
    # repr gives the shortest digits that read back as the same double, as ECMAScript.
    _sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)  # a finite number
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    exponent += len(digit_tuple) - len(digits)
    k = len(digits)
    n = exponent + k  # the decimal point sits after n digits
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return f"{digits[:n]}.{digits[n:]}"
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    e = n - 1
    mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def js_string(value: object) -> str:
    """JavaScript's String(value) for a value JSON.parse could give, or MISSING."""
    if value is MISSING:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        # JSON.parse reads every number as a double: a long integer shows as one. (Ints
        # from parse_int are within a double's range.)
        return number_string(float(value))
    if isinstance(value, list):
        # Array.prototype.join writes null and undefined items as nothing.
        return ",".join("" if item is None else js_string(item) for item in value)
    return "[object Object]"
