"""The key format: `<prefix>_<env tag>_<base62 body><6 base62 digits of CRC32>`.

The rules of keyrotor's operator/src/keys/format.ts: a scanner or a verifier can tell a
keyrotor key from a look-alike offline, without any secret.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass
from typing import Final, Literal

from ._base62 import PAIRS, base62_length, encode_checksum, encode_integer

Environment = Literal["production", "staging", "test", "development"]

DEFAULT_KEY_PREFIX: Final = "kr"
MIN_KEY_BITS: Final = 128
MAX_KEY_BITS: Final = 512
CHECKSUM_LENGTH: Final = 6

ENVIRONMENT_TAGS: Final[dict[Environment, str]] = {
    "production": "live",
    "staging": "stg",
    "test": "test",
    "development": "dev",
}
_ENVIRONMENT_BY_TAG: Final[dict[str, Environment]] = {
    tag: environment for environment, tag in ENVIRONMENT_TAGS.items()
}

# For fullmatch, the equivalent of the TypeScript /^...$/: a Python `$` would also match
# before a trailing newline. [a-z] and the like are ASCII ranges in a str pattern.
KEY_PATTERN: Final = re.compile(
    r"([a-z][a-z0-9]{1,11})_(live|stg|test|dev)_([0-9A-Za-z]+)"
)
_PREFIX_PATTERN: Final = re.compile(r"[a-z][a-z0-9]{1,11}")

# Key sizes by the length of their base62 body, computed once, as verifiers parse on
# every request. Filled from the largest size down, as the TypeScript does.
BITS_BY_BODY_LENGTH: Final[dict[int, int]] = {
    base62_length(bits): bits for bits in range(MAX_KEY_BITS, MIN_KEY_BITS - 1, -8)
}
# Lengths of what follows the environment tag's "_": the body and the checksum.
_REST_LENGTHS: Final = frozenset(n + CHECKSUM_LENGTH for n in BITS_BY_BODY_LENGTH)

NOT_A_KEY: Final = "not a keyrotor key: expected <prefix>_<env>_<base62>"
UNKNOWN_ENVIRONMENT: Final = "unknown environment tag"
UNEXPECTED_LENGTH: Final = "key body has an unexpected length"
CHECKSUM_MISMATCH: Final = "checksum mismatch"


@dataclass(frozen=True, slots=True)
class ParsedKey:
    """A well-formed key: what its text says. It holds no part of the key's secret."""

    prefix: str
    environment: Environment
    bits: int
    """Bits of entropy the body can hold."""
    ok: Literal[True] = True


@dataclass(frozen=True, slots=True)
class KeyProblem:
    """Why a text is not a keyrotor key. The reason never repeats the key."""

    reason: str
    ok: Literal[False] = False


ParseResult = ParsedKey | KeyProblem


def _checksum(head: bytes) -> str:
    return encode_checksum(zlib.crc32(head))


def parse_key(key: str) -> ParseResult:
    """Checks a key's shape, environment tag, length and checksum, in that order."""
    match = KEY_PATTERN.fullmatch(key)
    if match is None:
        return KeyProblem(NOT_A_KEY)
    prefix, tag, rest = match.groups()
    environment = _ENVIRONMENT_BY_TAG.get(tag)
    if environment is None:  # unreachable while KEY_PATTERN lists the tags (as in TS)
        return KeyProblem(UNKNOWN_ENVIRONMENT)
    bits = BITS_BY_BODY_LENGTH.get(len(rest) - CHECKSUM_LENGTH)
    if bits is None:
        return KeyProblem(UNEXPECTED_LENGTH)
    # The pattern admits ASCII only: these bytes are the UTF-8 the TypeScript checksums.
    if _checksum(key[:-CHECKSUM_LENGTH].encode()) != key[-CHECKSUM_LENGTH:]:
        return KeyProblem(CHECKSUM_MISMATCH)
    return ParsedKey(prefix, environment, bits)


_fullmatch = KEY_PATTERN.fullmatch
_crc32 = zlib.crc32


def well_formed_bytes(key: str) -> bytes | None:
    """The key's bytes if parse_key accepts it, else None: the verifier's hot path.

    The checks of parse_key with no result to build; the bytes are handed back so that
    the caller hashes them without encoding the key again. Written for speed, as it runs
    on every request: names bound once, encode_checksum inlined. Tests hold it to
    parse_key.
    """
    match = _fullmatch(key)
    # end(2) is the end of the tag: the body and checksum follow its "_".
    if match is None or len(key) - match.end(2) - 1 not in _REST_LENGTHS:
        return None
    data = key.encode()
    crc = _crc32(data[:-6])
    checksum = PAIRS[crc // 14_776_336] + PAIRS[crc // 3844 % 3844] + PAIRS[crc % 3844]
    if checksum != key[-6:]:
        return None
    return data


def _utf8(text: str) -> bytes:
    """`text` as Node's Buffer.from(text) encodes it: ids agree for any string."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        # Lone surrogates: JavaScript strings are UTF-16, and Node writes a lone
        # surrogate as U+FFFD. Through UTF-16, surrogates pair up as in JavaScript and
        # the rest are replaced. Leaving the except block first keeps the error (which
        # holds the text) out of any traceback.
        pass
    utf16 = text.encode("utf-16-le", "surrogatepass")
    return utf16.decode("utf-16-le", "replace").encode()


def key_id(key: str) -> str:
    """A key's public fingerprint, the first 16 hex digits of its SHA-256: loggable."""
    return hashlib.sha256(_utf8(key)).hexdigest()[:16]


def key_hash(key: str) -> str:
    """SHA-256 of a key, 64 lowercase hex digits: what a verifier document lists."""
    return hashlib.sha256(_utf8(key)).hexdigest()


def format_key(
    random: bytes,
    *,
    prefix: str = DEFAULT_KEY_PREFIX,
    environment: Environment = "production",
) -> str:
    """Formats a key from 16 to 64 random bytes, as keyrotor's formatKey does.

    For tests and tools: keyrotor issues the keys. Real ones need secrets.token_bytes.
    """
    bits = len(random) * 8
    if _PREFIX_PATTERN.fullmatch(prefix) is None:
        raise ValueError(
            f"keyPrefix {prefix!r} must be 2 to 12 lowercase letters or digits, "
            "starting with a letter"
        )
    if not MIN_KEY_BITS <= bits <= MAX_KEY_BITS:
        raise ValueError(f"keyBits {bits} must be a multiple of 8 from 128 to 512")
    if environment not in ENVIRONMENT_TAGS:
        raise ValueError(f"unknown environment {environment!r}")
    body = encode_integer(int.from_bytes(random, "big"), base62_length(bits))
    head = f"{prefix}_{ENVIRONMENT_TAGS[environment]}_{body}"
    return head + _checksum(head.encode())
