package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"
)

// testKey is a key from fixed bytes, made as keyrotor makes keys.
func testKey(seed byte, environment string, bits int) string {
	return formatKey("md", environment, []byte(strings.Repeat(string(rune(seed)), bits/8)))
}

func TestParseKeyEverySize(t *testing.T) {
	for bits := minKeyBits; bits <= maxKeyBits; bits += 8 {
		for environment := range tagByEnvironment {
			key := testKey(7, environment, bits)
			got, err := ParseKey(key)
			want := ParsedKey{Prefix: "md", Environment: environment, Bits: bits}
			if err != nil || got != want {
				t.Fatalf("ParseKey(%q) = %+v, %v; want %+v", key, got, err, want)
			}
		}
	}
}

func TestParseKeyReasons(t *testing.T) {
	key := testKey(1, "production", 256)
	body := key[len("md_live_"):]
	for _, c := range []struct {
		name, key string
		want      error
	}{
		{"twelve-character prefix", "abcdefghijk1" + key[2:], ErrChecksum},
		{"no body", "md_live_", ErrNotKey},
		{"underscore in the body", key[:20] + "_" + key[21:], ErrNotKey},
		{"tag without underscore", "md_live" + body, ErrNotKey},
		{"tag only", "md_live", ErrNotKey},
		{"non-ASCII in the body", key[:20] + "é" + key[22:], ErrNotKey},
		{"body too short for a checksum", "md_live_abc", ErrBodyLength},
		{"body of no key size", "md_live_" + strings.Repeat("a", 24+checksumLength), ErrBodyLength},
		{"body too long", "md_live_" + strings.Repeat("a", maxBodyLength+1+checksumLength), ErrBodyLength},
		{"checksum of another key", key[:len(key)-6] + testKey(2, "production", 256)[len(key)-6:], ErrChecksum},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseKey(c.key)
			if !errors.Is(err, c.want) {
				t.Fatalf("ParseKey = %v, want %v", err, c.want)
			}
			if strings.Contains(err.Error(), c.key) {
				t.Fatalf("the reason repeats the key: %v", err)
			}
		})
	}
}

// base62Length must be the exact ceiling: 62^(n-1) < 2^bits <= 62^n. A float rounding the wrong
// way would make a verifier refuse a whole key size.
func TestBase62Length(t *testing.T) {
	if base62Length(maxKeyBits) != maxBodyLength {
		t.Fatalf("base62Length(%d) = %d, maxBodyLength = %d", maxKeyBits, base62Length(maxKeyBits), maxBodyLength)
	}
	for bits := minKeyBits; bits <= maxKeyBits; bits += 8 {
		n := base62Length(bits)
		power := new(big.Int).Lsh(big.NewInt(1), uint(bits))
		below := new(big.Int).Exp(big.NewInt(62), big.NewInt(int64(n-1)), nil)
		above := new(big.Int).Exp(big.NewInt(62), big.NewInt(int64(n)), nil)
		if below.Cmp(power) >= 0 || above.Cmp(power) < 0 {
			t.Fatalf("base62Length(%d) = %d is not the least n with 62^n >= 2^%d", bits, n, bits)
		}
	}
}

// isBase62 tests 8 bytes at a time: every byte value at every position must give what a plain
// check gives.
func TestIsBase62EveryByte(t *testing.T) {
	plain := func(c byte) bool { return strings.IndexByte(base62Alphabet, c) >= 0 }
	for c := range 256 {
		for at := range 19 {
			text := []byte("aZ09bY18cX27dW36eV4")
			text[at] = byte(c)
			if got, want := isBase62(string(text)), plain(byte(c)); got != want {
				t.Fatalf("isBase62 with byte %#x at %d = %v, want %v", c, at, got, want)
			}
		}
	}
}

func TestKeyID(t *testing.T) {
	key := testKey(3, "staging", 128)
	sum := sha256.Sum256([]byte(key))
	if got, want := KeyID(key), hex.EncodeToString(sum[:])[:16]; got != want {
		t.Fatalf("KeyID = %q, want %q", got, want)
	}
}
