// Package verify checks keyrotor API keys against the verifier document an API mounts from the
// Secret keyrotor writes. The document holds SHA-256 hashes only: a service that verifies keys
// holds none. It is the Go counterpart of keyrotor's TypeScript verifier (keyrotor/verify) and
// passes the same conformance cases.
package verify

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strings"
	"time"
)

// Reason says why a key was accepted or refused.
type Reason string

const (
	Valid             Reason = "Valid"             // listed, current, and granted the scope asked
	Malformed         Reason = "Malformed"         // not a well-formed keyrotor key, or a bad checksum
	Unknown           Reason = "Unknown"           // well-formed, but not listed in the document
	Expired           Reason = "Expired"           // listed, but outside its validity window
	InsufficientScope Reason = "InsufficientScope" // listed and current, without the scope asked
)

// Result is what a verification says. It names a key by its id, never by the key.
// For a Malformed or Unknown key only Reason is set.
type Result struct {
	Valid  bool
	Reason Reason
	// KeyID is the key's public id, safe to log.
	KeyID string
	// Scopes are the scopes the key grants. The slice is shared with the Verifier and must not
	// be modified.
	Scopes      []string
	Environment string
	Consumer    Consumer
}

// Options say what a key is verified for.
type Options struct {
	// Scope, if not nil, is a scope the request needs. The empty scope is a scope like any other:
	// only a key granted "" or a covering wildcard has it.
	Scope *string
	// Now is the time to check the key's validity at; the zero Time means time.Now().
	Now time.Time
}

// A Verifier checks presented keys against a verifier document. It is safe for concurrent use.
type Verifier struct {
	issuer   string
	revision int64
	keys     []compiled
	byID     table
}

// compiled is an entry made ready to check: the hash decoded, the times in milliseconds.
type compiled struct {
	hash                [sha256.Size]byte
	notBefore, notAfter int64 // Unix milliseconds
	keyID               string
	scopes              []string
	environment         string
	consumer            Consumer
}

// New returns a Verifier for doc. A document from ParseDocument is always accepted; for one
// built otherwise, New checks what verifying depends on (hashes, key ids, validity windows, no key
// listed twice) and reports a problem as ParseDocument would.
func New(doc *Document) (*Verifier, error) {
	v := &Verifier{
		issuer:   doc.Issuer,
		revision: doc.Revision,
		keys:     make([]compiled, len(doc.Keys)),
		byID:     newTable(len(doc.Keys)),
	}
	for i := range doc.Keys {
		e := &doc.Keys[i]
		c := &v.keys[i]
		if len(e.SHA256) != 2*sha256.Size || strings.ToLower(e.SHA256) != e.SHA256 {
			return nil, documentError("keys[%d]: sha256 must be 64 lowercase hex digits", i)
		}
		if _, err := hex.Decode(c.hash[:], []byte(e.SHA256)); err != nil {
			return nil, documentError("keys[%d]: sha256 must be 64 lowercase hex digits", i)
		}
		if e.KeyID != e.SHA256[:16] {
			return nil, documentError("keys[%d]: keyId must be the first 16 hex digits of sha256", i)
		}
		if !windowOpen(e.NotBefore, e.NotAfter) {
			return nil, documentError("keys[%d]: notAfter must be after notBefore", i)
		}
		if !v.byID.insert(v.keys, i) {
			return nil, documentError("keys[%d]: keyId %s is listed twice", i, e.KeyID)
		}
		c.notBefore, c.notAfter = e.NotBefore.UnixMilli(), e.NotAfter.UnixMilli()
		c.keyID, c.environment, c.consumer = e.KeyID, e.Environment, e.Consumer
		// A copy, clipped: neither a later change to doc nor a caller's append to Result.Scopes
		// can change what the Verifier grants.
		c.scopes = slices.Clip(slices.Clone(e.Scopes))
	}
	return v, nil
}

// Issuer returns the issuer of the document, as namespace/name.
func (v *Verifier) Issuer() string { return v.issuer }

// Revision returns the revision of the document.
func (v *Verifier) Revision() int64 { return v.revision }

// Len returns the number of keys the document lists (current and previous ones).
func (v *Verifier) Len() int { return len(v.keys) }

// Verify checks a presented key at the current time, asking no scope.
func (v *Verifier) Verify(key string) Result {
	return v.check(key, time.Time{}, "", false)
}

// VerifyScope checks a presented key at the current time for a scope the request needs.
func (v *Verifier) VerifyScope(key, scope string) Result {
	return v.check(key, time.Time{}, scope, true)
}

// VerifyOptions checks a presented key as opts say.
func (v *Verifier) VerifyOptions(key string, opts Options) Result {
	if opts.Scope == nil {
		return v.check(key, opts.Now, "", false)
	}
	return v.check(key, opts.Now, *opts.Scope, true)
}

// check runs the checks in an order that keeps work and leaks small: shape and checksum first,
// so garbage is not hashed; then the hash is looked up by its public prefix and the whole hash
// compared in constant time; then the validity window; then the scope. The zero now is the
// current time, read only for a listed key.
func (v *Verifier) check(key string, now time.Time, scope string, scoped bool) Result {
	if _, err := ParseKey(key); err != nil {
		return Result{Reason: Malformed}
	}
	// ParseKey bounds the key's length, so it fits on the stack: hashing []byte(key) would
	// allocate for any key longer than 32 bytes.
	var buf [maxKeyLength]byte
	sum := sha256.Sum256(buf[:copy(buf[:], key)])
	i := v.byID.find(v.keys, idOf(&sum))
	if i < 0 || !equalHashes(&v.keys[i].hash, &sum) {
		return Result{Reason: Unknown}
	}
	c := &v.keys[i]
	r := Result{KeyID: c.keyID, Scopes: c.scopes, Environment: c.environment, Consumer: c.consumer}
	if now.IsZero() {
		now = time.Now()
	}
	// Milliseconds, as keyrotor's TypeScript verifier compares: a key is valid from notBefore
	// (inclusive) to notAfter (exclusive) to the same millisecond in every language.
	switch ms := now.UnixMilli(); {
	case ms < c.notBefore || ms >= c.notAfter:
		r.Reason = Expired
	case scoped && !ScopeGranted(c.scopes, scope):
		r.Reason = InsufficientScope
	default:
		r.Valid, r.Reason = true, Valid
	}
	return r
}

// equalHashes compares two hashes in constant time, as subtle.ConstantTimeCompare does but a
// word rather than a byte at a time: the differences of all words are ORed together and only
// that is compared, so the time taken never depends on where the hashes differ.
func equalHashes(a, b *[sha256.Size]byte) bool {
	var diff uint64
	for i := 0; i < sha256.Size; i += 8 {
		diff |= binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:])
	}
	return subtle.ConstantTimeEq(int32(uint32(diff)|uint32(diff>>32)), 0) == 1
}

// ScopeGranted reports whether any of granted covers needed. A granted scope ending in "*"
// covers every scope it is a prefix of without the "*": "prices:*" covers "prices:read" and
// "prices:", not "prices"; "*" covers every scope, the empty one too.
func ScopeGranted(granted []string, needed string) bool {
	for _, scope := range granted {
		if prefix, wildcard := strings.CutSuffix(scope, "*"); wildcard {
			if strings.HasPrefix(needed, prefix) {
				return true
			}
		} else if scope == needed {
			return true
		}
	}
	return false
}
