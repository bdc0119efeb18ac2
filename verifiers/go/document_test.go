package verify

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// documentWith is a valid document with one key, its field named by path replaced by value
// (raw JSON), or removed if value is "".
func documentWith(t *testing.T, field, value string) []byte {
	t.Helper()
	var doc map[string]any
	must(t, json.Unmarshal(documentJSON(t, 1, testKey(1, "production", 256)), &doc))
	target := doc
	if name, ok := strings.CutPrefix(field, "keys[0]."); ok {
		target, field = doc["keys"].([]any)[0].(map[string]any), name
	}
	if value == "" {
		delete(target, field)
	} else {
		target[field] = json.RawMessage(value)
	}
	data, err := json.Marshal(doc)
	must(t, err)
	return data
}

func TestParseDocumentMessages(t *testing.T) {
	const wrongVersion = "apiVersion must be keyrotor.dev/verifier/v1, not "
	for _, c := range []struct{ field, value, want string }{
		// keyrotor quotes a wrong apiVersion as JavaScript's String(value) spells it.
		{"apiVersion", "", wrongVersion + "undefined"},
		{"apiVersion", "null", wrongVersion + "null"},
		{"apiVersion", "true", wrongVersion + "true"},
		{"apiVersion", "1e21", wrongVersion + "1e+21"},
		{"apiVersion", "1e-7", wrongVersion + "1e-7"},
		{"apiVersion", "0.000001", wrongVersion + "0.000001"},
		{"apiVersion", "-0", wrongVersion + "0"},
		{"apiVersion", "100", wrongVersion + "100"},
		{"apiVersion", "123.456", wrongVersion + "123.456"},
		{"apiVersion", "9007199254740993", wrongVersion + "9007199254740992"},
		{"apiVersion", "1e400", wrongVersion + "Infinity"},
		{"apiVersion", `[1, [2, null], "a"]`, wrongVersion + "1,2,,a"},
		{"apiVersion", `{"v": 1}`, wrongVersion + "[object Object]"},
		{"issuer", "", "issuer must be namespace/name"},
		// Number.isInteger: a whole number however written; JavaScript reads 1e400 as Infinity.
		{"revision", `"1"`, "revision must be a whole number"},
		{"revision", "1e400", "revision must be a whole number"},
		{"revision", "2.5", "revision must be a whole number"},
		{"keys", "null", "keys must be a list"},
		{"keys[0].keyId", "7", "keys[0]: keyId must be the first 16 hex digits of sha256"},
		{"keys[0].scopes", "", "keys[0]: scopes must be a list of strings"},
		{"keys[0].notBefore", `"2026-12-01T12:00:00z"`, "keys[0]: notBefore must be an RFC 3339 time"},
		{"keys[0].notBefore", `"2026-12-01 12:00:00Z"`, "keys[0]: notBefore must be an RFC 3339 time"},
		{"keys[0].notBefore", `"2026-13-01T12:00:00Z"`, "keys[0]: notBefore must be an RFC 3339 time"},
		{"keys[0].notAfter", `"2026-12-01T12:00:00+24:00"`, "keys[0]: notAfter must be an RFC 3339 time"},
		{"keys[0].notAfter", `"2026-12-01T12:00:00-12:60"`, "keys[0]: notAfter must be an RFC 3339 time"},
		{"keys[0].notAfter", `"2026-12-01T23:59:60Z"`, "keys[0]: notAfter must be an RFC 3339 time"},
		{"keys[0].consumer", `"trading/bot"`, "keys[0]: consumer must name the ApiKey (namespace, name)"},
		{"keys[0].consumer", `{"namespace": "trading", "name": 7}`, "keys[0]: consumer must name the ApiKey (namespace, name)"},
	} {
		t.Run(c.field+"="+c.value, func(t *testing.T) {
			_, err := ParseDocument(documentWith(t, c.field, c.value))
			var docErr *DocumentError
			if !errors.As(err, &docErr) || err.Error() != c.want {
				t.Fatalf("error = %v, want %q", err, c.want)
			}
		})
	}
}

func TestParseDocumentAccepts(t *testing.T) {
	for _, c := range []struct{ field, value string }{
		{"revision", "1.0"},
		{"revision", "-3"},
		{"revision", "4e3"},
		{"note", `"a field keyrotor may add later"`},
		{"keys[0].labels", `{"team": "quant"}`},
		{"keys[0].notBefore", `"2026-12-01T11:00:00.123456789123-00:00"`},
		{"keys[0].notBefore", `"2026-12-01T11:30:00+23:59"`},
	} {
		t.Run(c.field+"="+c.value, func(t *testing.T) {
			if _, err := ParseDocument(documentWith(t, c.field, c.value)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestParseDocumentNotJSON(t *testing.T) {
	for _, text := range []string{"", "{", `{"apiVersion": "keyrotor.dev/verifier/v1"} {}`, "\ufeff{}"} {
		_, err := ParseDocument([]byte(text))
		if err == nil || !strings.HasPrefix(err.Error(), "not JSON: ") {
			t.Errorf("ParseDocument(%q) error = %v, want one starting with \"not JSON: \"", text, err)
		}
	}
}

// Times are compared in milliseconds, as JavaScript's Date holds them: two times in the same
// millisecond make an empty window.
func TestParseDocumentMilliseconds(t *testing.T) {
	doc := documentWith(t, "keys[0].notBefore", `"2026-12-01T12:00:00.0001Z"`)
	var raw map[string]any
	must(t, json.Unmarshal(doc, &raw))
	raw["keys"].([]any)[0].(map[string]any)["notAfter"] = "2026-12-01T12:00:00.0009Z"
	doc, err := json.Marshal(raw)
	must(t, err)
	if _, err := ParseDocument(doc); err == nil || err.Error() != "keys[0]: notAfter must be after notBefore" {
		t.Fatalf("error = %v, want the window refused", err)
	}
}

// documentJSON is a document listing keys, valid for an hour either side of now.
func documentJSON(t *testing.T, revision int64, keys ...string) []byte {
	t.Helper()
	now := time.Now().Truncate(time.Millisecond)
	doc := Document{APIVersion: APIVersion, Issuer: "market-data/prices", Revision: revision, Keys: []Entry{}}
	for _, key := range keys {
		doc.Keys = append(doc.Keys, entryFor(key, now.Add(-time.Hour), now.Add(time.Hour)))
	}
	data, err := json.Marshal(doc)
	must(t, err)
	return data
}
