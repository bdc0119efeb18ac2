"""Documents beyond the conformance cases: where Python's json and datetime differ."""

from __future__ import annotations

import json
import unittest
from datetime import datetime, timezone
from typing import Any

from keyrotor_verify import VerifierDocumentError, parse_verifier_document
from keyrotor_verify.document import epoch_ms

from .helpers import NOW_MS, document, dumps, entry, make_key

KEY = make_key("current")
KEY_ID = "ba578c530b452323"
OTHER = make_key("previous")
LATER = "2100-01-01T00:00:00Z"


def with_revision(literal: str) -> str:
    """A document whose revision is written as `literal`, whatever JSON it is."""
    return dumps(document()).replace('"revision": 1', f'"revision": {literal}')


class Documents(unittest.TestCase):
    def refused(self, text: str | bytes) -> str:
        with self.assertRaises(VerifierDocumentError) as caught:
            parse_verifier_document(text)
        return str(caught.exception)

    def refused_value(self, value: Any) -> str:
        return self.refused(json.dumps(value))

    def refused_entry(self, **overrides: Any) -> str:
        return self.refused_value(document(entry(KEY, **overrides)))

    def test_a_document_parses_into_typed_entries(self) -> None:
        parsed = parse_verifier_document(dumps(document(entry(KEY), revision=7)))
        self.assertEqual(parsed.revision, 7)
        self.assertEqual(parsed.issuer, "market-data/prices")
        (listed,) = parsed.keys
        self.assertEqual(listed.key_id, KEY_ID)
        self.assertEqual(listed.scopes, ("prices:read",))
        self.assertEqual(epoch_ms(listed.not_before), NOW_MS - 3_600_000)
        self.assertEqual(listed.not_after.tzinfo, timezone.utc)
        self.assertEqual(listed.consumer.name, "bot")

    def test_nan_and_infinity_are_not_json(self) -> None:
        for literal in ("NaN", "Infinity", "-Infinity"):
            with self.subTest(literal):
                message = self.refused(with_revision(literal))
                self.assertTrue(message.startswith("not JSON: "), message)

    def test_not_json(self) -> None:
        texts = ["", "{", "{'a': 1}", '{"a": 1} x', "\ufeff{}", b"\xef\xbb\xbf{}"]
        texts.append("[" * 100_000)  # deeper than Python's recursion limit
        for text in texts:
            with self.subTest(text=ascii(text)[:20]):
                message = self.refused(text)
                self.assertTrue(message.startswith("not JSON: "), message)

    def test_a_whole_float_is_a_whole_number(self) -> None:
        revision = parse_verifier_document(with_revision("2.0")).revision
        self.assertEqual(revision, 2)
        self.assertIs(type(revision), int)
        self.assertEqual(parse_verifier_document(with_revision("3e2")).revision, 300)

    def test_revision_must_be_a_whole_number(self) -> None:
        for literal in ("1.5", "true", "false", "null", '"1"', "[1]", "{}", "1e999"):
            with self.subTest(literal):
                message = self.refused(with_revision(literal))
                self.assertEqual(message, "revision must be a whole number")
        without = document()
        del without["revision"]
        message = self.refused_value(without)
        self.assertEqual(message, "revision must be a whole number")

    def test_api_version_is_shown_as_javascript_shows_it(self) -> None:
        shown = {
            '"apiVersion": null': "null",
            '"apiVersion": 1.0': "1",
            '"apiVersion": 1e21': "1e+21",
            '"apiVersion": true': "true",
            '"apiVersion": [1, null, [2, "x"]]': "1,,2,x",
            '"apiVersion": {}': "[object Object]",
            '"apiVersion": ""': "",
            '"apiVersionX": 1': "undefined",
        }
        prefix = "apiVersion must be keyrotor.dev/verifier/v1, not "
        original = '"apiVersion": "keyrotor.dev/verifier/v1"'
        for replacement, value in shown.items():
            with self.subTest(replacement):
                text = dumps(document()).replace(original, replacement)
                self.assertEqual(self.refused(text), prefix + value)

    def test_document_fields_are_type_checked(self) -> None:
        self.assertEqual(self.refused("[]"), "must be a JSON object")
        self.assertEqual(self.refused('"x"'), "must be a JSON object")
        issuer = self.refused_value(document(issuer=None))
        self.assertEqual(issuer, "issuer must be namespace/name")
        self.assertEqual(self.refused_value(document(keys=None)), "keys must be a list")
        self.assertEqual(self.refused_value(document(keys="ab")), "keys must be a list")
        for listed in (None, [], "x", 1, True):
            message = self.refused_value(document(listed))  # type: ignore[arg-type]
            self.assertEqual(message, "keys[0]: is not an object")

    def test_entry_fields_are_type_checked(self) -> None:
        problems: dict[str, list[dict[str, Any]]] = {
            "sha256 must be 64 lowercase hex digits": [{"sha256": None}, {"sha256": 1}],
            "keyId must be the first 16 hex digits of sha256": [
                {"keyId": None},
                {"keyId": 7},
                {"keyId": KEY_ID.upper()},
            ],
            "scopes must be a list of strings": [
                {"scopes": "a"},
                {"scopes": [True]},
                {"scopes": None},
                {"scopes": {"a": 1}},
            ],
            "environment must be a string": [
                {"environment": None},
                {"environment": [""]},
            ],
            "notBefore must be an RFC 3339 time": [{"notBefore": NOW_MS}],
            "consumer must name the ApiKey (namespace, name)": [
                {"consumer": None},
                {"consumer": ["trading", "bot"]},
                {"consumer": {"namespace": 1, "name": "bot"}},
                {"consumer": {"namespace": "trading", "name": None}},
            ],
        }
        for problem, cases in problems.items():
            for overrides in cases:
                with self.subTest(overrides=overrides):
                    message = self.refused_entry(**overrides)
                    self.assertEqual(message, f"keys[0]: {problem}")

    def test_missing_fields_are_refused(self) -> None:
        fields = ("sha256", "keyId", "scopes", "environment", "notBefore", "notAfter")
        for field in (*fields, "consumer"):
            with self.subTest(field):
                listed = entry(KEY)
                del listed[field]
                message = self.refused_value(document(listed))
                self.assertTrue(message.startswith("keys[0]: "), message)

    def test_checks_run_in_the_typescript_order(self) -> None:
        message = self.refused_entry(keyId="x", scopes=None, environment=None)
        self.assertIn("keyId must be", message)
        message = self.refused_entry(notBefore="x", notAfter="y", consumer=None)
        self.assertEqual(message, "keys[0]: notBefore must be an RFC 3339 time")
        # An entry listed twice is told before a later entry's problem.
        message = self.refused_value(document(entry(KEY), entry(KEY), {"bad": 1}))
        self.assertEqual(message, f"keys[1]: keyId {KEY_ID} is listed twice")

    def test_times_that_are_taken(self) -> None:
        taken = {
            "2026-12-01T12:00:00Z": NOW_MS,
            "2026-12-01T12:00:00.5Z": NOW_MS + 500,
            "2026-12-01T12:00:00.123456789Z": NOW_MS + 123,  # cut, as by Date.parse
            "2026-12-01T13:00:00+01:00": NOW_MS,
            "2026-12-01T11:00:00-01:00": NOW_MS,
            "2026-12-01T12:00:00-00:00": NOW_MS,
            "1969-12-31T23:59:59.9995Z": -1,  # rounded down before the epoch too
        }
        for text, ms in taken.items():
            with self.subTest(text):
                listed = entry(KEY, notBefore=text, notAfter=LATER)
                parsed = parse_verifier_document(json.dumps(document(listed)))
                self.assertEqual(epoch_ms(parsed.keys[0].not_before), ms)

    def test_times_that_are_refused(self) -> None:
        refused = [
            "2026-12-01T12:00:00",  # no zone
            "2026-12-01",
            "2026-12-01 12:00:00Z",
            "2026-12-01t12:00:00z",
            "2026-12-01T12:00Z",
            "2026-12-01T12:00:00.Z",
            "2026-12-01T12:00:00Z\n",  # `$` would let this through
            "\uff12\uff10\uff12\uff16-12-01T12:00:00Z",  # \d would take these digits
            "2026-12-01T12:00:00+0100",
            "2026-12-01T12:00:00+12:60",  # fromisoformat takes it, Date.parse does not
            "2026-13-01T12:00:00Z",
            "2026-12-01T12:60:00Z",
            "2026-12-01T23:59:60Z",
            "2026-02-30T12:00:00Z",  # Date.parse rolls it over to March 2
            "2026-12-01T24:00:00Z",  # Date.parse reads the next midnight
        ]
        for text in refused:
            with self.subTest(text=ascii(text)):
                message = self.refused_entry(notBefore=text)
                self.assertEqual(message, "keys[0]: notBefore must be an RFC 3339 time")

    def test_the_window_is_compared_in_milliseconds(self) -> None:
        start, end = "2026-12-01T12:00:00.0001Z", "2026-12-01T12:00:00.0009Z"
        message = self.refused_entry(notBefore=start, notAfter=end)
        self.assertEqual(message, "keys[0]: notAfter must be after notBefore")
        start, end = "2026-12-01T12:00:00.000Z", "2026-12-01T11:00:00.001-01:00"
        listed = entry(KEY, notBefore=start, notAfter=end)
        parsed = parse_verifier_document(json.dumps(document(listed)))
        self.assertEqual(len(parsed.keys), 1)

    def test_unknown_fields_are_ignored(self) -> None:
        listed = entry(KEY, labels={"team": "quant"}, keyIdV2=3)
        parsed = parse_verifier_document(json.dumps(document(listed, note=[1, None])))
        self.assertEqual(len(parsed.keys), 1)

    def test_of_repeated_names_the_last_wins_as_in_json_parse(self) -> None:
        text = (
            '{"apiVersion": "x", "apiVersion": "keyrotor.dev/verifier/v1",'
            ' "issuer": "a/b", "revision": "1", "revision": 3, "keys": []}'
        )
        self.assertEqual(parse_verifier_document(text).revision, 3)

    def test_integers_past_the_largest_double_are_infinity(self) -> None:
        # JSON.parse reads Infinity; int() would keep them, or refuse past 4300 digits.
        for digits in (309, 400, 5000):
            with self.subTest(digits=digits):
                huge = "9" * digits
                note = f'"note": [{huge}, -{huge}], "issuer"'
                text = dumps(document()).replace('"issuer"', note)
                self.assertEqual(parse_verifier_document(text).revision, 1)
                message = self.refused(with_revision(huge))
                self.assertEqual(message, "revision must be a whole number")
        large = "1" + "0" * 300  # a double, and a whole one
        revision = parse_verifier_document(with_revision(large)).revision
        self.assertEqual(revision, 10**300)

    def test_bytes_are_utf8_with_replacement_as_node_reads_them(self) -> None:
        listed = entry(KEY, consumer={"namespace": "trading", "name": "b\u00e9t"})
        text = json.dumps(document(listed), ensure_ascii=False).encode()
        parsed = parse_verifier_document(text.replace("\u00e9".encode(), b"\xff"))
        self.assertEqual(parsed.keys[0].consumer.name, "b\ufffdt")

    def test_two_keys(self) -> None:
        parsed = parse_verifier_document(json.dumps(document(entry(KEY), entry(OTHER))))
        ids = [listed.key_id for listed in parsed.keys]
        self.assertEqual(ids, [entry(KEY)["keyId"], entry(OTHER)["keyId"]])
        self.assertIsInstance(parsed.keys[0].not_after, datetime)


if __name__ == "__main__":
    unittest.main()
