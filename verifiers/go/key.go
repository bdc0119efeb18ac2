package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"strings"
)

// A keyrotor key is <prefix>_<env tag>_<body><checksum>:
//
//	prefix    2 to 12 lowercase letters or digits, starting with a letter (default "kr")
//	env tag   live (production), stg, test or dev
//	body      the random bits as one fixed-width base62 number
//	checksum  CRC-32 (IEEE) of everything before it, as 6 base62 digits
const (
	minKeyBits     = 128
	maxKeyBits     = 512
	checksumLength = 6
	maxPrefix      = 12
	// maxBodyLength is base62Length(maxKeyBits), spelled out as Go has no constant functions.
	maxBodyLength = 86
	// maxKeyLength bounds every key ParseKey accepts, so that a key fits in a buffer on the stack.
	maxKeyLength = maxPrefix + len("_test_") + maxBodyLength + checksumLength
)

const base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// The reasons ParseKey gives, word for word those of keyrotor's parseKey. None repeats the key.
var (
	ErrNotKey     = errors.New("not a keyrotor key: expected <prefix>_<env>_<base62>")
	ErrBodyLength = errors.New("key body has an unexpected length")
	ErrChecksum   = errors.New("checksum mismatch")
)

// ParsedKey is what a key says of itself, with no secret needed to read it.
type ParsedKey struct {
	Prefix string
	// Environment is "production", "staging", "test" or "development".
	Environment string
	// Bits is how many bits of entropy the body can hold: 128 to 512, a multiple of 8.
	Bits int
}

// bitsByBodyLength maps a body length to its key size; verifiers parse every presented key, so
// it is computed once. Filled from the largest size down, as keyrotor does, so that were two
// sizes ever to share a length the smaller would win.
var bitsByBodyLength = func() (table [maxBodyLength + 1]int) {
	for bits := maxKeyBits; bits >= minKeyBits; bits -= 8 {
		table[base62Length(bits)] = bits
	}
	return table
}()

// base62Length is how many base62 digits any bits-bit number needs: ceil(bits / log2 62).
func base62Length(bits int) int {
	return int(math.Ceil(float64(bits) / math.Log2(62)))
}

// ParseKey checks a key's shape, environment tag and checksum, offline: for scanners and for
// verifiers, which refuse a malformed key before hashing it. The error is ErrNotKey,
// ErrBodyLength or ErrChecksum and never contains the key.
//
// It is written by hand rather than with a regular expression, as it runs on every verification;
// it accepts what keyrotor's ^([a-z][a-z0-9]{1,11})_(live|stg|test|dev)_([0-9A-Za-z]+)$ does.
func ParseKey(key string) (ParsedKey, error) {
	end := prefixEnd(key)
	if end < 0 {
		return ParsedKey{}, ErrNotKey
	}
	prefix, environment, body := key[:end], "", ""
	switch rest := key[end+1:]; {
	case strings.HasPrefix(rest, "live_"):
		environment, body = "production", rest[len("live_"):]
	case strings.HasPrefix(rest, "stg_"):
		environment, body = "staging", rest[len("stg_"):]
	case strings.HasPrefix(rest, "test_"):
		environment, body = "test", rest[len("test_"):]
	case strings.HasPrefix(rest, "dev_"):
		environment, body = "development", rest[len("dev_"):]
	}
	if environment == "" || body == "" || !isBase62(body) {
		return ParsedKey{}, ErrNotKey
	}
	n := len(body) - checksumLength
	if n < 0 || n >= len(bitsByBodyLength) || bitsByBodyLength[n] == 0 {
		return ParsedKey{}, ErrBodyLength
	}
	// The checksum is decoded rather than the CRC encoded: six multiplications cost less than six
	// divisions, and a base62 number below 62^6 has one spelling, so the comparison is the same.
	head := key[:len(key)-checksumLength]
	if decodeBase62(key[len(head):]) != uint64(crc32String(head)) {
		return ParsedKey{}, ErrChecksum
	}
	return ParsedKey{Prefix: prefix, Environment: environment, Bits: bitsByBodyLength[n]}, nil
}

// prefixEnd returns where the key's prefix, [a-z][a-z0-9]{1,11}, ends with a "_", or -1.
// The prefix holds no "_", so the first one ends it.
func prefixEnd(key string) int {
	for i := 0; i < len(key) && i <= maxPrefix; i++ {
		switch c := key[i]; {
		case c == '_':
			if i < 2 || key[0] < 'a' || key[0] > 'z' {
				return -1
			}
			return i
		case (c < 'a' || c > 'z') && (c < '0' || c > '9'):
			return -1
		}
	}
	return -1
}

// isBase62 reports whether every byte of s is in [0-9A-Za-z]. A key's body is random, so
// branching on the range of each byte would be mispredicted at nearly every byte: it looks bytes
// up in a table instead, and ANDs the answers for 8 bytes before it branches.
func isBase62(s string) bool {
	for ; len(s) >= 8; s = s[8:] {
		_ = s[7]
		if base62Digit[s[0]]&base62Digit[s[1]]&base62Digit[s[2]]&base62Digit[s[3]]&
			base62Digit[s[4]]&base62Digit[s[5]]&base62Digit[s[6]]&base62Digit[s[7]] == 0 {
			return false
		}
	}
	for i := 0; i < len(s); i++ {
		if base62Digit[s[i]] == 0 {
			return false
		}
	}
	return true
}

// base62Digit[c] is 1 if c is a base62 digit, else 0; base62Values[c] is its value.
var base62Digit, base62Values = func() (digit [256]byte, values [256]byte) {
	for i := 0; i < len(base62Alphabet); i++ {
		digit[base62Alphabet[i]] = 1
		values[base62Alphabet[i]] = byte(i)
	}
	return digit, values
}()

// decodeBase62 is the value of s, digits the caller has checked.
func decodeBase62(s string) uint64 {
	var n uint64
	for i := 0; i < len(s); i++ {
		n = n*62 + uint64(base62Values[s[i]])
	}
	return n
}

// KeyID is the public fingerprint of a key, the first 16 hex digits of its SHA-256: what the
// ApiKey's status and the verifier document show, and what to log instead of the key.
func KeyID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:8])
}
