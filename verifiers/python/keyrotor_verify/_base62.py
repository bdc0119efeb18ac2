"""Base62 as keyrotor writes it: digits, then upper case, then lower case letters."""

import math

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# Every two-digit string, by value: a checksum (a CRC32, below 62**6) is then written
# with two divmods and three indexings instead of six of each, as it is computed on
# every verification.
PAIRS = tuple(high + low for high in ALPHABET for low in ALPHABET)
_PAIR = len(PAIRS)  # 62**2, 3844


def base62_length(bits: int) -> int:
    """Characters needed to write any `bits`-bit number in base62, as in the TS."""
    return math.ceil(bits / math.log2(62))


def encode_integer(value: int, width: int) -> str:
    """`value` in base62, left-padded with "0" to `width`."""
    if value < 0:
        raise ValueError("a negative number has no base62 form here")
    digits = []
    while value:
        value, digit = divmod(value, 62)
        digits.append(ALPHABET[digit])
    if len(digits) > width:
        raise ValueError(f"value needs {len(digits)} base62 digits, more than {width}")
    return "".join(reversed(digits)).rjust(width, "0")


def encode_checksum(value: int) -> str:
    """A CRC32 as 6 base62 digits: encode_integer(value, 6), faster.

    `value` must be from 0 to 2**32 - 1, as any CRC32 is. It is not checked.
    """
    high, rest = divmod(value, _PAIR * _PAIR)
    middle, low = divmod(rest, _PAIR)
    return PAIRS[high] + PAIRS[middle] + PAIRS[low]
