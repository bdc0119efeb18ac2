package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// benchKeys is the number of keys the benchmark document lists: a large issuer.
const benchKeys = 100_000

var bench struct {
	once     sync.Once
	verifier *Verifier
	keys     []string
	bytes    [][]byte // the same keys, for the bare hash
}

// benchSetup builds, once for every benchmark, a verifier of benchKeys keys valid around now.
// The keys come from a fixed seed, so every run measures the same work.
func benchSetup(b *testing.B) {
	bench.once.Do(func() {
		random := rand.New(rand.NewChaCha8([32]byte{}))
		now := time.Now()
		doc := &Document{APIVersion: APIVersion, Issuer: "market-data/prices", Revision: 1}
		for range benchKeys {
			body := make([]byte, 32)
			for i := range body {
				body[i] = byte(random.Uint32())
			}
			key := formatKey("kr", "production", body)
			sum := sha256.Sum256([]byte(key))
			hash := hex.EncodeToString(sum[:])
			doc.Keys = append(doc.Keys, Entry{
				KeyID: hash[:16], SHA256: hash, Scopes: []string{"prices:*", "orders:read"},
				Environment: "production", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
				Consumer: Consumer{Namespace: "trading", Name: "bot"},
			})
			bench.keys = append(bench.keys, key)
			bench.bytes = append(bench.bytes, []byte(key))
		}
		v, err := New(doc)
		if err != nil {
			panic(err)
		}
		bench.verifier = v
	})
	b.ResetTimer()
}

// benchKey is the key the single-key benchmarks verify: one listed mid-document.
func benchKey() string { return bench.keys[benchKeys/2] }

// BenchmarkVerify verifies one key of the document as a service does: reading the clock, asking
// a scope, which a wildcard grants.
func BenchmarkVerify(b *testing.B) {
	benchSetup(b)
	v, key := bench.verifier, benchKey()
	b.ReportAllocs()
	for b.Loop() {
		if r := v.VerifyScope(key, "prices:read"); !r.Valid {
			b.Fatal(r.Reason)
		}
	}
}

// BenchmarkVerifyAt is BenchmarkVerify with the time given: the verifier's own work, without
// the cost of reading the clock, which depends on the machine more than anything here.
func BenchmarkVerifyAt(b *testing.B) {
	benchSetup(b)
	v, key, scope := bench.verifier, benchKey(), "prices:read"
	opts := Options{Scope: &scope, Now: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if r := v.VerifyOptions(key, opts); !r.Valid {
			b.Fatal(r.Reason)
		}
	}
}

// BenchmarkSHA256 is the floor the verification is measured against: the bare SHA-256 of the
// same key, already a []byte.
func BenchmarkSHA256(b *testing.B) {
	benchSetup(b)
	key := []byte(benchKey())
	b.ReportAllocs()
	for b.Loop() {
		sha256.Sum256(key)
	}
}

// BenchmarkVerifyEveryKey verifies every key of the document in turn: each verification then
// misses the CPU caches, on the key, its slot and its entry.
func BenchmarkVerifyEveryKey(b *testing.B) {
	benchSetup(b)
	v, keys := bench.verifier, bench.keys
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if r := v.VerifyScope(keys[i%len(keys)], "prices:read"); !r.Valid {
			b.Fatal(r.Reason)
		}
	}
}

// BenchmarkSHA256EveryKey is the floor of BenchmarkVerifyEveryKey: the same keys, hashed in turn.
func BenchmarkSHA256EveryKey(b *testing.B) {
	benchSetup(b)
	keys := bench.bytes
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sha256.Sum256(keys[i%len(keys)])
	}
}

func BenchmarkParseKey(b *testing.B) {
	benchSetup(b)
	key := benchKey()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseKey(key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTimeNow is the cost of reading the clock, which BenchmarkVerify includes.
func BenchmarkTimeNow(b *testing.B) {
	for b.Loop() {
		time.Now()
	}
}

// BenchmarkVerifyOverSHA256 reports the ratio itself, robust to a machine whose load changes
// during a run: verifications and bare hashes alternate in batches of 100 calls, the order
// turning each batch, so that both meet the same conditions. ns/op is that of one pair of batches.
func BenchmarkVerifyOverSHA256(b *testing.B) {
	scope := "prices:read"
	at := Options{Scope: &scope, Now: time.Now()}
	for _, c := range []struct {
		name  string
		every bool
		opts  Options // the time given, or zero to read the clock
	}{
		{"one-key", false, Options{Scope: &scope}},
		{"one-key-time-given", false, at},
		{"every-key", true, Options{Scope: &scope}},
	} {
		b.Run(c.name, func(b *testing.B) {
			benchSetup(b)
			const batch = 100
			v, keys, raw := bench.verifier, bench.keys, bench.bytes
			if !c.every {
				keys, raw = []string{benchKey()}, [][]byte{[]byte(benchKey())}
			}
			var verifyNs, hashNs time.Duration
			i := 0
			for round := 0; b.Loop(); round++ {
				for turn := range 2 {
					start := time.Now()
					if (round+turn)%2 == 0 {
						for j := range batch {
							v.VerifyOptions(keys[(i+j)%len(keys)], c.opts)
						}
						verifyNs += time.Since(start)
					} else {
						for j := range batch {
							sha256.Sum256(raw[(i+j)%len(raw)])
						}
						hashNs += time.Since(start)
					}
				}
				i += batch
			}
			calls := float64(b.N * batch)
			b.ReportMetric(float64(verifyNs)/calls, "verify-ns")
			b.ReportMetric(float64(hashNs)/calls, "sha256-ns")
			b.ReportMetric(float64(verifyNs)/float64(hashNs), "verify/sha256")
		})
	}
}
