package verify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"time"
)

// APIVersion is the version of the verifier document this package reads.
const APIVersion = "keyrotor.dev/verifier/v1"

// File is the Secret's data key that holds the document, so the name of the mounted file.
const File = "verifier.json"

// Document is a verifier document: what an API needs to check keys without holding any. keyrotor
// writes one per issuer into a Secret; docs/verifier.schema.json describes it.
type Document struct {
	APIVersion string `json:"apiVersion"`
	// Issuer is the issuer, as namespace/name.
	Issuer string `json:"issuer"`
	// Revision increases with every change, so a service can log which version it checks against.
	Revision int64   `json:"revision"`
	Keys     []Entry `json:"keys"`
}

// Entry is one key a document lists, by its hash: never the key itself.
type Entry struct {
	// KeyID is the key's public id, the first 16 hex digits of SHA256.
	KeyID string `json:"keyId"`
	// SHA256 is the SHA-256 of the whole key, 64 lowercase hex digits.
	SHA256      string   `json:"sha256"`
	Scopes      []string `json:"scopes"`
	Environment string   `json:"environment"`
	// The key is valid from NotBefore (inclusive) to NotAfter (exclusive).
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	Consumer  Consumer  `json:"consumer"`
}

// Consumer names the ApiKey a key belongs to.
type Consumer struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// A DocumentError says why a verifier document was refused and, for an entry, which one.
// Its message is word for word that of keyrotor's TypeScript verifier.
type DocumentError struct {
	msg string
	err error // the JSON syntax error, for a document that is not JSON
}

func (e *DocumentError) Error() string { return e.msg }
func (e *DocumentError) Unwrap() error { return e.err }

func documentError(format string, args ...any) error {
	return &DocumentError{msg: fmt.Sprintf(format, args...)}
}

var (
	hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// RFC 3339 with a zone, as keyrotor writes; time.Parse alone would take some other shapes.
	rfc3339 = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$`)
)

// ParseDocument parses and checks a verifier document, in the order and with the messages of
// keyrotor's own parser, so that every verifier refuses the same documents for the same reason.
// Fields it does not know are ignored: a later keyrotor may add some.
//
// The JSON is decoded into generic values first so that a field of the wrong type is reported
// by name, as keyrotor does, rather than as a Go type error.
func ParseDocument(data []byte) (*Document, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // JavaScript takes any number, even one a float64 cannot hold
	var value any
	err := dec.Decode(&value)
	if err == nil {
		if _, next := dec.Token(); next != io.EOF {
			err = errors.New("unexpected data after the top-level value")
		}
	}
	if err != nil {
		return nil, &DocumentError{msg: "not JSON: " + err.Error(), err: err}
	}
	object, ok := value.(map[string]any)
	if !ok {
		return nil, documentError("must be a JSON object")
	}
	apiVersion, ok := object["apiVersion"]
	if apiVersion != APIVersion {
		return nil, documentError("apiVersion must be %s, not %s", APIVersion, jsString(apiVersion, ok))
	}
	issuer, ok := object["issuer"].(string)
	if !ok {
		return nil, documentError("issuer must be namespace/name")
	}
	revision, ok := wholeNumber(object["revision"])
	if !ok {
		return nil, documentError("revision must be a whole number")
	}
	list, ok := object["keys"].([]any)
	if !ok {
		return nil, documentError("keys must be a list")
	}
	doc := &Document{APIVersion: APIVersion, Issuer: issuer, Revision: revision, Keys: make([]Entry, len(list))}
	seen := make(map[string]bool, len(list))
	for i, item := range list {
		entry, problem := parseEntry(item)
		if problem != "" {
			return nil, documentError("keys[%d]: %s", i, problem)
		}
		// A key listed twice could carry two sets of scopes or validity; which one a verifier
		// used would be luck.
		if seen[entry.KeyID] {
			return nil, documentError("keys[%d]: keyId %s is listed twice", i, entry.KeyID)
		}
		seen[entry.KeyID] = true
		doc.Keys[i] = entry
	}
	return doc, nil
}

// parseEntry checks one entry of the keys list, returning the problem with it if any.
func parseEntry(item any) (Entry, string) {
	object, ok := item.(map[string]any)
	if !ok {
		return Entry{}, "is not an object"
	}
	var e Entry
	if e.SHA256, ok = object["sha256"].(string); !ok || !hex64.MatchString(e.SHA256) {
		return Entry{}, "sha256 must be 64 lowercase hex digits"
	}
	if e.KeyID, ok = object["keyId"].(string); !ok || e.KeyID != e.SHA256[:16] {
		return Entry{}, "keyId must be the first 16 hex digits of sha256"
	}
	if e.Scopes, ok = stringList(object["scopes"]); !ok {
		return Entry{}, "scopes must be a list of strings"
	}
	if e.Environment, ok = object["environment"].(string); !ok {
		return Entry{}, "environment must be a string"
	}
	if e.NotBefore, ok = parseTime(object["notBefore"]); !ok {
		return Entry{}, "notBefore must be an RFC 3339 time"
	}
	if e.NotAfter, ok = parseTime(object["notAfter"]); !ok {
		return Entry{}, "notAfter must be an RFC 3339 time"
	}
	if !windowOpen(e.NotBefore, e.NotAfter) {
		return Entry{}, "notAfter must be after notBefore"
	}
	consumer, _ := object["consumer"].(map[string]any)
	namespace, ok1 := consumer["namespace"].(string)
	name, ok2 := consumer["name"].(string)
	if !ok1 || !ok2 {
		return Entry{}, "consumer must name the ApiKey (namespace, name)"
	}
	e.Consumer = Consumer{Namespace: namespace, Name: name}
	return e, ""
}

// windowOpen reports whether a key valid from notBefore to notAfter is ever valid. Times are
// compared in milliseconds, the resolution of JavaScript's Date, as keyrotor does.
func windowOpen(notBefore, notAfter time.Time) bool {
	return notAfter.UnixMilli() > notBefore.UnixMilli()
}

func stringList(value any) ([]string, bool) {
	items, ok := value.([]any)
	if !ok {
		return nil, false
	}
	list := make([]string, len(items))
	for i, item := range items {
		if list[i], ok = item.(string); !ok {
			return nil, false
		}
	}
	return list, true
}

// parseTime reads an RFC 3339 time as keyrotor does: the shape by the same expression, the
// values by time.Parse, which refuses what JavaScript's Date refuses but for a zone offset of
// 24 hours or 60 minutes, refused here by hand.
func parseTime(value any) (time.Time, bool) {
	text, ok := value.(string)
	if !ok || !rfc3339.MatchString(text) {
		return time.Time{}, false
	}
	if zone := text[len(text)-6:]; zone[0] == '+' || zone[0] == '-' {
		if zone[1:3] > "23" || zone[4:6] > "59" {
			return time.Time{}, false
		}
	}
	t, err := time.Parse(time.RFC3339Nano, text)
	return t, err == nil
}

// wholeNumber is JavaScript's Number.isInteger for a decoded JSON value, limited to what an
// int64 holds. The number is read as JavaScript reads it, as the nearest float64.
func wholeNumber(value any) (int64, bool) {
	number, ok := value.(json.Number)
	if !ok {
		return 0, false
	}
	f, _ := strconv.ParseFloat(string(number), 64) // out of range is ±Inf, which is not whole
	if math.IsInf(f, 0) || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}
