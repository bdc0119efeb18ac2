"""Verification cost against a bare SHA-256 of the same key (not run by the tests).

    cd verifiers/python && python3 bench.py [--entries N] [--rounds N] [--number N]
    python3 bench.py --parts    # also what each step of verify costs on its own

A document of `entries` keys is built as keyrotor writes one, then a listed key is
verified (the Valid path, every check made) and hashed, in interleaved rounds so that a
change in machine load hits every candidate alike. Prints medians in ns per call.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import re
import secrets
import statistics
import time
import timeit
import zlib
from collections.abc import Callable

from keyrotor_verify import Verifier

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BODY_LENGTH = 43  # base62 digits for 256 bits: ceil(256 / log2(62))


def base62(value: int, width: int) -> str:
    digits = []
    while value:
        value, digit = divmod(value, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits)).rjust(width, "0")


def new_key() -> str:
    """A 256-bit key in keyrotor's format, made here apart from the library."""
    body = base62(int.from_bytes(secrets.token_bytes(32), "big"), BODY_LENGTH)
    head = "kr_live_" + body
    return head + base62(zlib.crc32(head.encode()), 6)


def document(keys: list[str]) -> str:
    def entry(key: str) -> dict[str, object]:
        sha256 = hashlib.sha256(key.encode()).hexdigest()
        return {
            "keyId": sha256[:16],
            "sha256": sha256,
            "scopes": ["prices:read"],
            "environment": "production",
            "notBefore": "2026-01-01T00:00:00.000Z",
            "notAfter": "2999-01-01T00:00:00.000Z",
            "consumer": {"namespace": "trading", "name": "bot"},
        }

    value = {
        "apiVersion": "keyrotor.dev/verifier/v1",
        "issuer": "market-data/prices",
        "revision": 1,
        "keys": [entry(key) for key in keys],
    }
    return json.dumps(value)


def measure(
    timers: dict[str, timeit.Timer], rounds: int, number: int
) -> dict[str, float]:
    """Median ns per call of each timer, over interleaved rounds."""
    samples: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(rounds):
        for name, timer in timers.items():
            samples[name].append(timer.timeit(number) / number * 1e9)
    return {name: statistics.median(values) for name, values in samples.items()}


def parts(key: str, rounds: int, number: int) -> None:
    """Each step of verify alone, and the alternatives that were weighed against it."""
    pattern = re.compile(r"([a-z][a-z0-9]{1,11})_(live|stg|test|dev)_([0-9A-Za-z]+)")
    tags = frozenset(("live", "stg", "test", "dev"))
    pairs = tuple(a + b for a in ALPHABET for b in ALPHABET)
    data = key.encode()
    digest = hashlib.sha256(data).digest()
    crc = zlib.crc32(data[:-6])

    def hand_check(key: str) -> bool:
        # The shape without a regex: split, then str methods (ASCII-guarded).
        parts = key.split("_")
        if len(parts) != 3:
            return False
        prefix, tag, rest = parts
        return (
            tag in tags
            and 2 <= len(prefix) <= 12
            and prefix.isascii()
            and prefix.isalnum()
            and prefix.islower()
            and prefix[0].isalpha()
            and rest.isascii()
            and rest.isalnum()
        )

    names: dict[str, object] = {
        "key": key,
        "data": data,
        "digest": digest,
        "crc": crc,
        "pairs": pairs,
        "pattern": pattern,
        "hand_check": hand_check,
        "base62": base62,
        "by_id": {digest[:8]: digest},
        "by_hex": {digest.hex()[:16]: digest},
        "sha256": hashlib.sha256,
        "crc32": zlib.crc32,
        "compare_digest": hmac.compare_digest,
        "time_ns": time.time_ns,
        "nothing": lambda: None,
    }
    steps = {
        "sha256(data).digest()": "sha256(data).digest()",
        "a Python call": "nothing()",
        "key.encode()": "key.encode()",
        "regex fullmatch": "pattern.fullmatch(key)",
        "hand shape check": "hand_check(key)",
        "crc32(data[:-6])": "crc32(data[:-6])",
        "checksum, pairs": "pairs[crc // 14776336] + pairs[crc // 3844 % 3844]"
        " + pairs[crc % 3844] == key[-6:]",
        "checksum, divmod loop": "base62(crc, 6) == key[-6:]",
        "lookup by 8 bytes": "by_id.get(digest[:8])",
        "lookup by 16 hex": "by_hex.get(digest.hex()[:16])",
        "compare_digest": "compare_digest(digest, digest)",
        "time_ns()": "time_ns()",
    }
    timers = {name: timeit.Timer(stmt, globals=names) for name, stmt in steps.items()}
    print("\nsteps, each alone:")
    for name, value in measure(timers, rounds, number).items():
        print(f"  {name:24s} {value:6.0f} ns")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=101)
    parser.add_argument("--number", type=int, default=2_000, help="calls per round")
    parser.add_argument("--parts", action="store_true")
    args = parser.parse_args()

    keys = [new_key() for _ in range(args.entries)]
    started = time.perf_counter()
    verifier = Verifier.from_json(document(keys))
    parsed_in = time.perf_counter() - started
    print(f"document: {args.entries} entries, parsed and compiled in {parsed_in:.2f} s")

    key = keys[len(keys) // 2]
    data = key.encode()
    assert verifier.verify(key, scope="prices:read").valid
    sha256 = hashlib.sha256
    compare_digest = hmac.compare_digest
    digests = (sha256(listed.encode()).digest() for listed in keys)
    by_id = {digest[:8]: digest for digest in digests}

    def floor(key: str) -> bool:
        """The least a hash-lookup verifier does: no format check, clock or result."""
        digest = sha256(key.encode()).digest()
        found = by_id.get(digest[:8])
        return found is not None and compare_digest(found, digest)

    calls: dict[str, tuple[Callable[..., object], str]] = {
        "verify": (verifier.verify, "call(key)"),
        "verify+scope": (verifier.verify, "call(key, scope='prices:read')"),
        "floor": (floor, "call(key)"),
        "sha256": (sha256, "call(data).digest()"),
    }
    timers = {
        name: timeit.Timer(stmt, globals={"call": call, "key": key, "data": data})
        for name, (call, stmt) in calls.items()
    }
    medians = measure(timers, args.rounds, args.number)
    for name, value in medians.items():
        print(f"{name:13s} {value:7.0f} ns per call (median of {args.rounds} rounds)")
    for name in ("verify", "verify+scope", "floor"):
        print(f"ratio {name} / sha256: {medians[name] / medians['sha256']:.2f}")
    if args.parts:
        parts(key, args.rounds, args.number)


if __name__ == "__main__":
    main()
