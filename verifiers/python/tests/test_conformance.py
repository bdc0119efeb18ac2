"""The cases every keyrotor verifier must pass (verifiers/testdata, from the TS)."""

from __future__ import annotations

import json
import unittest
from datetime import datetime
from pathlib import Path
from typing import Any

from keyrotor_verify import (
    KeyProblem,
    ParsedKey,
    Verifier,
    VerifierDocumentError,
    VerifyResult,
    parse_key,
    parse_verifier_document,
)
from keyrotor_verify.document import epoch_ms

TESTDATA = Path(__file__).resolve().parent.parent.parent / "testdata"


def _load(name: str) -> Any:
    return json.loads((TESTDATA / name).read_text(encoding="utf-8"))


def _as_json(result: VerifyResult) -> dict[str, Any]:
    """A result in the TypeScript's shape, for comparing with `expect`."""
    out: dict[str, Any] = {"valid": result.valid, "reason": str(result.reason)}
    if result.key_id is not None:
        assert result.scopes is not None and result.consumer is not None
        out["keyId"] = result.key_id
        out["scopes"] = list(result.scopes)
        out["environment"] = result.environment
        consumer = result.consumer
        out["consumer"] = {"namespace": consumer.namespace, "name": consumer.name}
    return out


class ParseCases(unittest.TestCase):
    def test_parse_cases(self) -> None:
        cases = _load("parse-cases.json")
        self.assertGreater(len(cases), 0)
        for case in cases:
            with self.subTest(key=case["key"]):
                result = parse_key(case["key"])
                expected = case["result"]
                if expected["ok"]:
                    self.assertEqual(result, ParsedKey(**expected["key"]))
                else:
                    self.assertEqual(result, KeyProblem(expected["reason"]))


class VerifyCases(unittest.TestCase):
    def test_verify_cases(self) -> None:
        cases = _load("verify-cases.json")
        self.assertGreater(len(cases), 0)
        verifiers: dict[str, Verifier] = {}
        for case in cases:
            with self.subTest(case["name"]):
                name = case["document"]
                if name not in verifiers:
                    text = (TESTDATA / "documents" / name).read_text(encoding="utf-8")
                    verifiers[name] = Verifier.from_json(text)
                now = epoch_ms(datetime.fromisoformat(case["now"]))
                scope = case.get("scope")  # absent: no scope asked
                result = verifiers[name].verify(case["key"], scope=scope, now=now)
                self.assertEqual(_as_json(result), case["expect"])


class DocumentCases(unittest.TestCase):
    def test_document_cases(self) -> None:
        cases = _load("document-cases.json")
        self.assertGreater(len(cases), 0)
        for case in cases:
            with self.subTest(case["document"]):
                path = TESTDATA / "documents" / case["document"]
                text = path.read_text(encoding="utf-8")
                with self.assertRaises(VerifierDocumentError) as caught:
                    parse_verifier_document(text)
                message = str(caught.exception)
                if case["error"] == "not JSON":
                    # Parsers word their errors differently: keyrotor's part is held to.
                    self.assertTrue(message.startswith("not JSON"), message)
                else:
                    self.assertEqual(message, case["error"])

    def test_valid_documents_parse(self) -> None:
        for path in sorted((TESTDATA / "documents").glob("*.json")):
            with self.subTest(path.name):
                document = parse_verifier_document(path.read_bytes())
                self.assertEqual(document.api_version, "keyrotor.dev/verifier/v1")


if __name__ == "__main__":
    unittest.main()
