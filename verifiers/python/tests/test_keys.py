from __future__ import annotations

import json
import random
import unittest
from pathlib import Path

from keyrotor_verify import (
    Environment,
    KeyProblem,
    ParsedKey,
    format_key,
    key_hash,
    key_id,
    parse_key,
)
from keyrotor_verify._base62 import ALPHABET, encode_checksum, encode_integer
from keyrotor_verify.keys import (
    BITS_BY_BODY_LENGTH,
    CHECKSUM_MISMATCH,
    NOT_A_KEY,
    UNEXPECTED_LENGTH,
    well_formed_bytes,
)

from .helpers import make_key

TESTDATA = Path(__file__).resolve().parent.parent.parent / "testdata"
ENVIRONMENTS: tuple[Environment, ...] = ("production", "staging", "test", "development")
CURRENT = "kr_live_qngaL2FeeiGRe4xoN0o3fhzK8mrrmAE9Dg7qcruPN2147kiMO"


class Base62(unittest.TestCase):
    def test_checksum_encoding_agrees_with_the_plain_one(self) -> None:
        rng = random.Random(62)
        values = [0, 1, 61, 62, 3843, 3844, 62**4 - 1, 62**4, 2**32 - 1]
        values += [rng.randrange(2**32) for _ in range(2000)]
        for value in values:
            self.assertEqual(encode_checksum(value), encode_integer(value, 6), value)

    def test_fixed_width(self) -> None:
        self.assertEqual(encode_integer(0, 3), "000")
        self.assertEqual(encode_integer(62, 3), "010")
        self.assertEqual(encode_integer(61, 1), ALPHABET[-1])
        with self.assertRaises(ValueError):
            encode_integer(62, 1)

    def test_body_lengths_are_those_of_the_typescript(self) -> None:
        # Math.ceil(bits / Math.log2(62)) for bits = 128, 136, ... 512, as Node says.
        node = (
            "22,23,25,26,27,29,30,31,33,34,35,37,38,39,41,42,43,45,46,48,49,50,52,53,"
            "54,56,57,58,60,61,62,64,65,66,68,69,70,72,73,74,76,77,78,80,81,82,84,85,86"
        )
        lengths = [int(length) for length in node.split(",")]
        self.assertEqual(BITS_BY_BODY_LENGTH, dict(zip(lengths, range(128, 513, 8))))


class FormatAndParse(unittest.TestCase):
    def test_keys_made_here_are_the_typescript_ones(self) -> None:
        cases = json.loads((TESTDATA / "parse-cases.json").read_text(encoding="utf-8"))
        keys = {case["key"] for case in cases}
        self.assertIn(make_key("current"), keys)
        self.assertIn(make_key("staging", "staging", 128, "shop"), keys)
        self.assertIn(make_key("long", "development", 512), keys)
        self.assertIn(make_key("test-env", "test", 192, "pay2"), keys)

    def test_every_size_and_environment_round_trips(self) -> None:
        rng = random.Random(8)
        for bits in range(128, 513, 8):
            for environment in ENVIRONMENTS:
                with self.subTest(bits=bits, environment=environment):
                    key = format_key(rng.randbytes(bits // 8), environment=environment)
                    self.assertEqual(parse_key(key), ParsedKey("kr", environment, bits))
                    self.assertEqual(well_formed_bytes(key), key.encode())

    def test_all_zero_and_all_one_bytes(self) -> None:
        for data in (bytes(32), b"\xff" * 32, bytes(16), b"\xff" * 64):
            self.assertTrue(parse_key(format_key(data)).ok)

    def test_format_refuses_bad_options(self) -> None:
        with self.assertRaises(ValueError):
            format_key(bytes(15))
        with self.assertRaises(ValueError):
            format_key(bytes(65))
        with self.assertRaises(ValueError):
            format_key(bytes(32), prefix="K")

    def test_reasons(self) -> None:
        self.assertEqual(parse_key(CURRENT[:-1] + "a"), KeyProblem(CHECKSUM_MISMATCH))
        self.assertEqual(parse_key(CURRENT + "a"), KeyProblem(UNEXPECTED_LENGTH))
        self.assertEqual(parse_key(CURRENT + "\n"), KeyProblem(NOT_A_KEY))
        self.assertEqual(parse_key(CURRENT + "\r\n"), KeyProblem(NOT_A_KEY))
        self.assertEqual(parse_key("\n" + CURRENT), KeyProblem(NOT_A_KEY))
        # Digits other than ASCII ones are no base62, though \d would match them.
        arabic_three = CURRENT[:20] + "\u0663" + CURRENT[21:]
        self.assertEqual(parse_key(arabic_three), KeyProblem(NOT_A_KEY))
        dotless_i = CURRENT.replace("kr", "k\u0131")
        self.assertEqual(parse_key(dotless_i), KeyProblem(NOT_A_KEY))

    def test_hot_path_agrees_with_parse_key(self) -> None:
        """well_formed_bytes, which verify uses, says yes just when parse_key does."""
        rng = random.Random(1)
        alphabet = ALPHABET + "_-\n \u0663\u00e9\ud800"
        good = [make_key(f"k{n}", bits=rng.randrange(128, 513, 8)) for n in range(40)]
        texts = list(good)
        for key in good:
            for _ in range(40):
                chars = list(key)
                position = rng.randrange(len(chars) + 1)
                kind = rng.randrange(3)
                if kind == 0 and position < len(chars):
                    del chars[position]
                elif kind == 1:
                    chars.insert(position, rng.choice(alphabet))
                elif position < len(chars):
                    chars[position] = rng.choice(alphabet)
                texts.append("".join(chars))
        for text in texts:
            with self.subTest(text=ascii(text)):
                expected = text.encode() if parse_key(text).ok else None
                self.assertEqual(well_formed_bytes(text), expected)

    def test_results_never_repeat_the_key(self) -> None:
        for text in (CURRENT, CURRENT[:-1] + "a", CURRENT + "a", CURRENT + "\n"):
            result = parse_key(text)
            self.assertNotIn(text.strip()[8:], repr(result))


class KeyIds(unittest.TestCase):
    def test_key_id_is_a_sha256_prefix(self) -> None:
        self.assertEqual(key_id(CURRENT), "ba578c530b452323")
        self.assertEqual(key_hash(CURRENT)[:16], key_id(CURRENT))
        self.assertEqual(len(key_hash(CURRENT)), 64)

    def test_any_string_hashes_as_node_does(self) -> None:
        # createHash('sha256').update(s).digest('hex').slice(0, 16) in Node.
        expected = {
            "\ud800": "83d544ccc223c057",
            "a\udc00b": "05087813392efc16",
            "\ud83d\ude00": "f0443a342c5ef547",
            "\U0001f600": "f0443a342c5ef547",
            "\u00e9": "4a99557e4033c353",
        }
        for text, value in expected.items():
            self.assertEqual(key_id(text), value, ascii(text))


if __name__ == "__main__":
    unittest.main()
