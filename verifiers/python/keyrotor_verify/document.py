"""The verifier document: what an API needs to check keys without holding any.

keyrotor writes one per issuer into a Secret (`verifier.json`) and the API mounts it.
The checks, their order and their messages are those of operator/src/verify/document.ts,
so that every verifier refuses the same documents for the same reasons.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final, TypeGuard

from ._js import MISSING, js_string, parse_int, refuse_constant

VERIFIER_API_VERSION: Final = "keyrotor.dev/verifier/v1"
VERIFIER_FILE: Final = "verifier.json"

_HEX64: Final = re.compile(r"[0-9a-f]{64}")
# RFC 3339 with a zone, as keyrotor writes (toISOString). [0-9], not \d, which takes
# any Unicode digit; for fullmatch, as a Python `$` would let a trailing newline
# through. The group is the offset's minutes.
_RFC3339: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:Z|[+-][0-9]{2}:([0-9]{2}))"
)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MILLISECOND: Final = timedelta(milliseconds=1)


class VerifierDocumentError(ValueError):
    """A document refused whole; the message says which entry and field is wrong."""


@dataclass(frozen=True, slots=True)
class Consumer:
    """The ApiKey a key belongs to."""

    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class VerifierEntry:
    """One listed key: its hash and bounds, never the key."""

    key_id: str
    """The key's public id: the first 16 hex digits of its SHA-256."""
    sha256: str
    """SHA-256 of the whole key, 64 lowercase hex digits."""
    scopes: tuple[str, ...]
    environment: str
    not_before: datetime
    """Valid from here (inclusive). Compared in whole milliseconds, like Date.parse."""
    not_after: datetime
    """Valid until here (exclusive)."""
    consumer: Consumer


@dataclass(frozen=True, slots=True)
class VerifierDocument:
    api_version: str
    issuer: str
    """The issuer, as namespace/name."""
    revision: int
    """Increases with every change, so that a service can log which one it uses."""
    keys: tuple[VerifierEntry, ...]


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, rounded down like Date.parse (before 1970 too)."""
    return (moment - _EPOCH) // _MILLISECOND


def _parse_time(value: object) -> datetime | None:
    """An RFC 3339 time with a zone, or None. Pattern first: fromisoformat is lax."""
    if not isinstance(value, str):
        return None
    match = _RFC3339.fullmatch(value)
    # fromisoformat takes offset minutes up to 99; Date.parse, as RFC 3339, stops at 59.
    if match is None or (match[1] is not None and int(match[1]) > 59):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        # Stricter than Date.parse, never laxer: it refuses 24:00:00, February 30 and
        # year 0, which V8 takes (rolling them over). keyrotor writes none of them.
        return None


def _is_string_list(value: object) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _entry(entry: object) -> VerifierEntry | str:
    """The entry, or what is wrong with it: the checks in the TypeScript's order."""
    if not isinstance(entry, dict):
        return "is not an object"
    sha256 = entry.get("sha256")
    if not isinstance(sha256, str) or _HEX64.fullmatch(sha256) is None:
        return "sha256 must be 64 lowercase hex digits"
    key_id = entry.get("keyId")
    if not isinstance(key_id, str) or key_id != sha256[:16]:
        return "keyId must be the first 16 hex digits of sha256"
    scopes = entry.get("scopes")
    if not _is_string_list(scopes):
        return "scopes must be a list of strings"
    environment = entry.get("environment")
    if not isinstance(environment, str):
        return "environment must be a string"
    not_before = _parse_time(entry.get("notBefore"))
    if not_before is None:
        return "notBefore must be an RFC 3339 time"
    not_after = _parse_time(entry.get("notAfter"))
    if not_after is None:
        return "notAfter must be an RFC 3339 time"
    if epoch_ms(not_after) <= epoch_ms(not_before):
        return "notAfter must be after notBefore"
    consumer = entry.get("consumer")
    if (
        not isinstance(consumer, dict)
        or not isinstance(namespace := consumer.get("namespace"), str)
        or not isinstance(name := consumer.get("name"), str)
    ):
        return "consumer must name the ApiKey (namespace, name)"
    return VerifierEntry(
        key_id,
        sha256,
        tuple(scopes),
        environment,
        not_before,
        not_after,
        Consumer(namespace, name),
    )


def _revision(value: object) -> int | None:
    """Number.isInteger: a whole float (1.0) is whole, true is no number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():  # False for inf
        return int(value)
    return None


def _load_json(text: str | bytes) -> Any:
    if isinstance(text, (bytes, bytearray)):
        # As Node's readFile(file, 'utf8'): a bad byte becomes U+FFFD, a BOM stays (and
        # is refused below, as by JSON.parse).
        text = text.decode("utf-8", "replace")
    try:
        # Of repeated names the last wins, as in JSON.parse.
        return json.loads(text, parse_int=parse_int, parse_constant=refuse_constant)
    except ValueError as error:  # JSONDecodeError, NaN or Infinity
        raise VerifierDocumentError(f"not JSON: {error}") from None
    except RecursionError:
        raise VerifierDocumentError("not JSON: nested too deeply") from None


def parse_verifier_document(text: str | bytes) -> VerifierDocument:
    """Parses and checks a verifier document (bytes as UTF-8); ignores unknown fields.

    Raises VerifierDocumentError with the TypeScript's message, but for "not JSON: "
    followed by Python's own words.
    """
    value = _load_json(text)
    if not isinstance(value, dict):
        raise VerifierDocumentError("must be a JSON object")
    api_version = value.get("apiVersion", MISSING)
    if not isinstance(api_version, str) or api_version != VERIFIER_API_VERSION:
        raise VerifierDocumentError(
            f"apiVersion must be {VERIFIER_API_VERSION}, not {js_string(api_version)}"
        )
    issuer = value.get("issuer")
    if not isinstance(issuer, str):
        raise VerifierDocumentError("issuer must be namespace/name")
    revision = _revision(value.get("revision"))
    if revision is None:
        raise VerifierDocumentError("revision must be a whole number")
    listed = value.get("keys")
    if not isinstance(listed, list):
        raise VerifierDocumentError("keys must be a list")
    entries: list[VerifierEntry] = []
    seen: set[str] = set()
    for index, item in enumerate(listed):
        entry = _entry(item)
        if isinstance(entry, str):
            raise VerifierDocumentError(f"keys[{index}]: {entry}")
        # A key listed twice could carry two sets of scopes or validity: which one a
        # verifier used would be luck.
        if entry.key_id in seen:
            raise VerifierDocumentError(
                f"keys[{index}]: keyId {entry.key_id} is listed twice"
            )
        seen.add(entry.key_id)
        entries.append(entry)
    return VerifierDocument(api_version, issuer, revision, tuple(entries))
