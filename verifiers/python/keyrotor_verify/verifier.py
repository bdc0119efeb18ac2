"""Checks presented keys against a verifier document, as verify/verifier.ts does."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from .document import (
    Consumer,
    VerifierDocument,
    VerifierEntry,
    epoch_ms,
    parse_verifier_document,
)
from .keys import well_formed_bytes

# Bound once: verify runs on every request, and each module attribute lookup costs.
_sha256 = hashlib.sha256
_compare_digest = hmac.compare_digest
_time_ns = time.time_ns


class Reason(StrEnum):
    VALID = "Valid"
    MALFORMED = "Malformed"
    UNKNOWN = "Unknown"
    EXPIRED = "Expired"
    INSUFFICIENT_SCOPE = "InsufficientScope"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What a verification says. It names the key by its id, never by the key.

    key_id, scopes, environment and consumer are set for a listed key (Valid, Expired,
    InsufficientScope) and None otherwise. A result is true when the key is valid.
    """

    valid: bool
    reason: Reason
    key_id: str | None = None
    scopes: tuple[str, ...] | None = None
    environment: str | None = None
    consumer: Consumer | None = None

    def __bool__(self) -> bool:
        return self.valid


MALFORMED: Final = VerifyResult(False, Reason.MALFORMED)
UNKNOWN: Final = VerifyResult(False, Reason.UNKNOWN)


def scope_granted(granted: Iterable[str], needed: str) -> bool:
    """Does a scope of `granted` cover `needed`?

    A scope ending in `*` covers every scope it prefixes: `prices:*` covers
    `prices:read` and `prices:`, and `*` covers every scope, "" too.
    """
    return any(
        needed.startswith(scope[:-1]) if scope.endswith("*") else scope == needed
        for scope in granted
    )


def _known(entry: VerifierEntry, valid: bool, reason: Reason) -> VerifyResult:
    return VerifyResult(
        valid, reason, entry.key_id, entry.scopes, entry.environment, entry.consumer
    )


class _Compiled:
    """An entry as verify uses it: the hash as bytes, bounds as integers."""

    __slots__ = (
        "entry",
        "hash",
        "not_before_ms",
        "not_after_ms",
        "not_before_ns",
        "not_after_ns",
        "exact",
        "prefixes",
        "valid",
    )

    def __init__(self, entry: VerifierEntry) -> None:
        self.entry = entry
        self.hash = bytes.fromhex(entry.sha256)
        self.not_before_ms = epoch_ms(entry.not_before)
        self.not_after_ms = epoch_ms(entry.not_after)
        # The default clock is time.time_ns(). Compared with bounds in nanoseconds, it
        # says what whole milliseconds (Date.now()) would, as the bounds are whole
        # milliseconds; and it saves a division per call.
        self.not_before_ns = self.not_before_ms * 1_000_000
        self.not_after_ns = self.not_after_ms * 1_000_000
        scopes = entry.scopes
        self.exact = frozenset(scope for scope in scopes if not scope.endswith("*"))
        self.prefixes = tuple(scope[:-1] for scope in scopes if scope.endswith("*"))
        # Every call that finds the key valid returns this immutable result: no garbage.
        self.valid = _known(entry, True, Reason.VALID)

    def grants(self, needed: str) -> bool:
        # scope_granted as a set lookup and one startswith over the wildcard prefixes.
        return needed in self.exact or needed.startswith(self.prefixes)


class Verifier:
    """Checks keys against one document. Immutable, so safe to share between threads.

    The order of checks keeps work and leaks small: shape and checksum first (no hashing
    of garbage), then the hash is looked up by its public prefix and the whole hash
    compared in constant time, then validity times against the clock, then the scope.
    """

    __slots__ = ("_document", "_by_key_id")

    def __init__(self, document: VerifierDocument) -> None:
        self._document = document
        # By the key id as 8 bytes, the digest's first 8: no hex to encode per call.
        self._by_key_id: dict[bytes, _Compiled] = {
            bytes.fromhex(entry.key_id): _Compiled(entry) for entry in document.keys
        }

    @classmethod
    def from_json(cls, text: str | bytes) -> Verifier:
        """A verifier for a document's text; raises VerifierDocumentError."""
        return cls(parse_verifier_document(text))

    @property
    def document(self) -> VerifierDocument:
        return self._document

    @property
    def revision(self) -> int:
        return self._document.revision

    @property
    def size(self) -> int:
        """Number of keys the document lists (current and previous ones)."""
        return len(self._by_key_id)

    def __len__(self) -> int:
        return len(self._by_key_id)

    def __repr__(self) -> str:
        issuer, revision = self._document.issuer, self.revision
        return f"<Verifier issuer={issuer!r} revision={revision} keys={self.size}>"

    def verify(
        self, key: str, *, scope: str | None = None, now: int | None = None
    ) -> VerifyResult:
        """Checks a presented key.

        scope: a scope the request needs; None for none ("" is a scope like any other).
        now: the time to check against, in milliseconds since the epoch (as Date.now());
        by default the clock at the call.
        """
        data = well_formed_bytes(key)
        if data is None:
            return MALFORMED
        digest = _sha256(data).digest()
        found = self._by_key_id.get(digest[:8])
        if found is None or not _compare_digest(found.hash, digest):
            return UNKNOWN
        if now is None:
            moment = _time_ns()
            expired = moment < found.not_before_ns or moment >= found.not_after_ns
        else:
            expired = now < found.not_before_ms or now >= found.not_after_ms
        if expired:
            return _known(found.entry, False, Reason.EXPIRED)
        if scope is not None and not found.grants(scope):
            return _known(found.entry, False, Reason.INSUFFICIENT_SCOPE)
        return found.valid
