package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
)

// entryFor is the document entry of key, granting prices:* and orders:read from notBefore to notAfter.
func entryFor(key string, notBefore, notAfter time.Time) Entry {
	sum := sha256.Sum256([]byte(key))
	hash := hex.EncodeToString(sum[:])
	return Entry{
		KeyID: hash[:16], SHA256: hash, Scopes: []string{"prices:*", "orders:read"},
		Environment: "production", NotBefore: notBefore, NotAfter: notAfter,
		Consumer: Consumer{Namespace: "trading", Name: "bot"},
	}
}

func TestVerifyAtTheCurrentTime(t *testing.T) {
	key, other := testKey(1, "production", 256), testKey(2, "production", 256)
	now := time.Now()
	v, err := New(&Document{Keys: []Entry{entryFor(key, now.Add(-time.Minute), now.Add(time.Minute))}})
	must(t, err)
	for _, c := range []struct {
		name string
		got  Result
		want Reason
	}{
		{"no scope asked", v.Verify(key), Valid},
		{"a scope granted", v.VerifyScope(key, "prices:read"), Valid},
		{"a scope not granted", v.VerifyScope(key, "orders:write"), InsufficientScope},
		{"the empty scope", v.VerifyScope(key, ""), InsufficientScope},
		{"an hour later", v.VerifyOptions(key, Options{Now: now.Add(time.Hour)}), Expired},
		{"a key not listed", v.Verify(other), Unknown},
		{"not a key", v.Verify("md_live_" + key), Malformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.got.Reason != c.want || c.got.Valid != (c.want == Valid) {
				t.Fatalf("got %+v, want %s", c.got, c.want)
			}
			if known := c.want != Unknown && c.want != Malformed; known != (c.got.KeyID == KeyID(key)) {
				t.Fatalf("KeyID = %q for a %s key", c.got.KeyID, c.want)
			}
			if strings.Contains(fmt.Sprintf("%#v", c.got), key) {
				t.Fatalf("the result repeats the key: %+v", c.got)
			}
		})
	}
}

func TestScopeGranted(t *testing.T) {
	for _, c := range []struct {
		granted []string
		needed  string
		want    bool
	}{
		{[]string{"prices:read"}, "prices:read", true},
		{[]string{"prices:read"}, "prices:read:all", false},
		{[]string{"prices:*"}, "prices:", true},
		{[]string{"prices:*"}, "prices", false},
		{[]string{"prices*"}, "pricesx", true},
		{[]string{"*"}, "", true},
		{[]string{""}, "", true},
		{[]string{"a", "b"}, "b", true},
		{nil, "", false},
		{[]string{"pri*ces"}, "prices", false},
	} {
		if got := ScopeGranted(c.granted, c.needed); got != c.want {
			t.Errorf("ScopeGranted(%q, %q) = %v, want %v", c.granted, c.needed, got, c.want)
		}
	}
}

// New checks what verifying depends on in a document it did not parse, with ParseDocument's words.
func TestNewRefuses(t *testing.T) {
	key := testKey(1, "production", 256)
	now := time.Now()
	good := entryFor(key, now, now.Add(time.Hour))
	for _, c := range []struct {
		name   string
		change func(*Entry)
		want   string
	}{
		{"upper-case hash", func(e *Entry) { e.SHA256 = strings.ToUpper(e.SHA256) }, "keys[1]: sha256 must be 64 lowercase hex digits"},
		{"not hex", func(e *Entry) { e.SHA256 = "g" + e.SHA256[1:] }, "keys[1]: sha256 must be 64 lowercase hex digits"},
		{"another key's id", func(e *Entry) { e.KeyID = "0000000000000000" }, "keys[1]: keyId must be the first 16 hex digits of sha256"},
		{"an empty window", func(e *Entry) { e.NotAfter = e.NotBefore.Add(time.Microsecond) }, "keys[1]: notAfter must be after notBefore"},
		{"listed twice", func(e *Entry) {}, "keys[1]: keyId " + KeyID(key) + " is listed twice"},
	} {
		t.Run(c.name, func(t *testing.T) {
			changed := good
			c.change(&changed)
			_, err := New(&Document{Keys: []Entry{good, changed}})
			if err == nil || err.Error() != c.want {
				t.Fatalf("New error = %v, want %q", err, c.want)
			}
		})
	}
}

// A Verifier keeps its own copy of the scopes: changing the document after New, or appending to
// a result's scopes, changes nothing it grants.
func TestVerifierOwnsItsScopes(t *testing.T) {
	key := testKey(1, "production", 256)
	now := time.Now()
	doc := &Document{Keys: []Entry{entryFor(key, now.Add(-time.Minute), now.Add(time.Minute))}}
	v, err := New(doc)
	must(t, err)
	doc.Keys[0].Scopes[0] = "*"
	_ = append(v.Verify(key).Scopes, "*")
	if r := v.VerifyScope(key, "anything"); r.Reason != InsufficientScope {
		t.Fatalf("got %+v, want InsufficientScope", r)
	}
}

// Many keys, so that lookups collide in the table and probe on.
func TestVerifyManyKeys(t *testing.T) {
	now := time.Now()
	doc := &Document{}
	var keys []string
	for i := range 3000 {
		key := formatKey("kr", "test", []byte(fmt.Sprintf("%016d", i)))
		keys = append(keys, key)
		doc.Keys = append(doc.Keys, entryFor(key, now.Add(-time.Minute), now.Add(time.Minute)))
	}
	v, err := New(doc)
	must(t, err)
	if v.Len() != len(keys) {
		t.Fatalf("Len = %d, want %d", v.Len(), len(keys))
	}
	for i, key := range keys {
		if r := v.Verify(key); !r.Valid || r.KeyID != doc.Keys[i].KeyID {
			t.Fatalf("key %d: %+v", i, r)
		}
		if r := v.Verify(formatKey("kr", "test", []byte(fmt.Sprintf("%016d", -i-1)))); r.Reason != Unknown {
			t.Fatalf("unlisted key %d: %+v", i, r)
		}
	}
}

func TestEqualHashes(t *testing.T) {
	a := sha256.Sum256([]byte("a key"))
	if b := a; !equalHashes(&a, &b) {
		t.Fatal("equal hashes compare unequal")
	}
	for bit := range 8 * sha256.Size {
		b := a
		b[bit/8] ^= 1 << (bit % 8)
		if equalHashes(&a, &b) {
			t.Fatalf("hashes differing in bit %d compare equal", bit)
		}
	}
}
