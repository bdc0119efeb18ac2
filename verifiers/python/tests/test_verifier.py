from __future__ import annotations

import json
import random
import unittest
from typing import Any
from unittest import mock

from keyrotor_verify import (
    Consumer,
    Reason,
    Verifier,
    VerifyResult,
    format_key,
    key_hash,
    parse_key,
    parse_verifier_document,
    scope_granted,
)
from keyrotor_verify.verifier import _Compiled

from .helpers import HOUR_MS, NOW_MS, document, entry, make_key

KEY = make_key("current")
OLD = make_key("old")
EARLY, LATE = "2000-01-01T00:00:00Z", "2200-01-01T00:00:00Z"


def verifier(*entries: dict[str, Any]) -> Verifier:
    return Verifier.from_json(json.dumps(document(*entries)))


class Verify(unittest.TestCase):
    def test_results_never_hold_the_key(self) -> None:
        listed = verifier(entry(KEY), entry(OLD, notAfter="2026-12-01T11:30:00Z"))
        for key, scope in ((KEY, None), (KEY, "orders:write"), (OLD, None)):
            for text in (key, key[:-1] + "x", make_key("unlisted")):
                result = listed.verify(text, scope=scope, now=NOW_MS)
                for shown in (repr(result), str(result)):
                    self.assertNotIn(text[8:], shown)
        self.assertNotIn(KEY[8:], repr(listed))

    def test_a_key_that_is_no_str_is_a_type_error_without_the_key(self) -> None:
        with self.assertRaises(TypeError) as caught:
            verifier(entry(KEY)).verify(KEY.encode())  # type: ignore[arg-type]
        self.assertNotIn(KEY[8:], str(caught.exception))

    def test_a_result_is_true_when_valid(self) -> None:
        listed = verifier(entry(KEY))
        self.assertTrue(listed.verify(KEY, now=NOW_MS))
        self.assertFalse(listed.verify(KEY, scope="x", now=NOW_MS))
        self.assertFalse(listed.verify("nope"))
        self.assertEqual(listed.verify(KEY, now=NOW_MS).reason, "Valid")

    def test_malformed_exactly_when_parse_key_says_so(self) -> None:
        listed = verifier(entry(KEY))
        rng = random.Random(4)
        for _ in range(500):
            chars = list(KEY)
            chars[rng.randrange(len(chars))] = rng.choice("aZ9_-\n\u00e9")
            text = "".join(chars)
            malformed = listed.verify(text).reason == Reason.MALFORMED
            self.assertEqual(malformed, not parse_key(text).ok, ascii(text))

    def test_a_listed_hash_of_a_malformed_key_is_still_malformed(self) -> None:
        # Shape and checksum come before the lookup.
        bad = KEY[:-1] + ("a" if KEY[-1] != "a" else "b")
        listed = verifier(entry(KEY), entry(bad))
        self.assertEqual(listed.verify(bad, now=NOW_MS).reason, Reason.MALFORMED)

    def test_the_whole_hash_is_compared(self) -> None:
        # An entry with the key's id but another hash.
        sha256 = key_hash(KEY)
        forged = sha256[:16] + ("0" if sha256[16] != "0" else "1") + sha256[17:]
        listed = verifier(entry(KEY, sha256=forged, keyId=forged[:16]))
        self.assertEqual(listed.verify(KEY, now=NOW_MS).reason, Reason.UNKNOWN)

    def test_default_clock_bounds_are_those_of_milliseconds(self) -> None:
        listed = verifier(entry(KEY))
        before, after = NOW_MS - HOUR_MS, NOW_MS + HOUR_MS
        cases = {
            before * 1_000_000 - 1: Reason.EXPIRED,
            before * 1_000_000: Reason.VALID,
            after * 1_000_000 - 1: Reason.VALID,  # still in the last millisecond
            after * 1_000_000: Reason.EXPIRED,
        }
        for ns, reason in cases.items():
            with mock.patch("keyrotor_verify.verifier._time_ns", return_value=ns):
                self.assertEqual(listed.verify(KEY).reason, reason, ns)
        cases = {
            before - 1: Reason.EXPIRED,
            before: Reason.VALID,
            after - 1: Reason.VALID,
            after: Reason.EXPIRED,
        }
        for ms, reason in cases.items():
            self.assertEqual(listed.verify(KEY, now=ms).reason, reason, ms)

    def test_the_real_clock(self) -> None:
        current = verifier(entry(KEY, notBefore=EARLY, notAfter=LATE))
        self.assertEqual(current.verify(KEY).reason, Reason.VALID)
        past = verifier(entry(KEY, notBefore=EARLY, notAfter="2001-01-01T00:00:00Z"))
        self.assertEqual(past.verify(KEY).reason, Reason.EXPIRED)

    def test_known_results_carry_the_entry(self) -> None:
        listed = verifier(entry(KEY, scopes=["a", "b*"], environment="staging"))
        result = listed.verify(KEY, scope="c", now=NOW_MS)
        expected = VerifyResult(
            False,
            Reason.INSUFFICIENT_SCOPE,
            entry(KEY)["keyId"],
            ("a", "b*"),
            "staging",
            Consumer("trading", "bot"),
        )
        self.assertEqual(result, expected)
        self.assertEqual((listed.size, len(listed), listed.revision), (1, 1, 1))

    def test_keys_of_every_size(self) -> None:
        rng = random.Random(3)
        keys = [format_key(rng.randbytes(bits // 8)) for bits in range(128, 513, 8)]
        listed = verifier(*(entry(key) for key in keys))
        for key in keys:
            self.assertEqual(listed.verify(key, now=NOW_MS).reason, Reason.VALID)

    def test_a_verifier_from_a_document_built_in_code(self) -> None:
        parsed = parse_verifier_document(json.dumps(document(entry(KEY))))
        self.assertEqual(Verifier(parsed).verify(KEY, now=NOW_MS).reason, Reason.VALID)


class Scopes(unittest.TestCase):
    def test_scope_granted(self) -> None:
        self.assertTrue(scope_granted(["prices:*"], "prices:read"))
        self.assertTrue(scope_granted(["prices:*"], "prices:"))
        self.assertFalse(scope_granted(["prices:*"], "prices"))
        self.assertTrue(scope_granted(["*"], ""))
        self.assertFalse(scope_granted(["prices:read"], ""))
        self.assertFalse(scope_granted([], ""))
        self.assertTrue(scope_granted(["a*b*"], "a*b*c"))
        self.assertFalse(scope_granted(["a*b*"], "axbc"))

    def test_compiled_scopes_agree_with_scope_granted(self) -> None:
        rng = random.Random(5)
        pieces = ["", "*", "a", "b", ":", "a:", "a*", "ab", "\u00e9"]
        for _ in range(2000):
            granted = [
                "".join(rng.choices(pieces, k=rng.randrange(3)))
                for _ in range(rng.randrange(4))
            ]
            needed = "".join(rng.choices(pieces[2:], k=rng.randrange(3)))
            text = json.dumps(document(entry(KEY, scopes=granted)))
            compiled = _Compiled(parse_verifier_document(text).keys[0])
            expected = scope_granted(granted, needed)
            self.assertEqual(compiled.grants(needed), expected, (granted, needed))


if __name__ == "__main__":
    unittest.main()
