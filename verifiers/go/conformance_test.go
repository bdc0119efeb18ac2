package verify

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The cases every keyrotor verifier must pass, written by keyrotor's scripts/conformance.ts from
// what its TypeScript verifier says.
const testdata = "../testdata"

func readJSON(t *testing.T, name string, into any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testdata, name))
	must(t, err)
	must(t, json.Unmarshal(data, into))
}

func TestConformanceParseKey(t *testing.T) {
	var cases []struct {
		Key    string
		Result struct {
			OK     bool
			Reason string
			Key    ParsedKey
		}
	}
	readJSON(t, "parse-cases.json", &cases)
	for _, c := range cases {
		t.Run(fmt.Sprintf("%q", c.Key), func(t *testing.T) {
			got, err := ParseKey(c.Key)
			switch {
			case c.Result.OK && err != nil:
				t.Fatalf("ParseKey: %v, want %+v", err, c.Result.Key)
			case c.Result.OK && got != c.Result.Key:
				t.Fatalf("ParseKey = %+v, want %+v", got, c.Result.Key)
			case !c.Result.OK && (err == nil || err.Error() != c.Result.Reason):
				t.Fatalf("ParseKey error = %v, want %q", err, c.Result.Reason)
			}
		})
	}
}

func TestConformanceVerify(t *testing.T) {
	var cases []struct {
		Name, Document, Key string
		Now                 time.Time
		Scope               *string
		Expect              struct {
			Valid       bool
			Reason      Reason
			KeyID       string
			Scopes      []string
			Environment string
			Consumer    Consumer
		}
	}
	readJSON(t, "verify-cases.json", &cases)
	verifiers := map[string]*Verifier{}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			v := verifiers[c.Document]
			if v == nil {
				v = loadDocument(t, c.Document)
				verifiers[c.Document] = v
			}
			got := v.VerifyOptions(c.Key, Options{Scope: c.Scope, Now: c.Now})
			want := c.Expect
			if got.Valid != want.Valid || got.Reason != want.Reason || got.KeyID != want.KeyID ||
				!slices.Equal(got.Scopes, want.Scopes) || got.Environment != want.Environment ||
				got.Consumer != want.Consumer {
				t.Fatalf("got %+v, want %+v", got, want)
			}
			if c.Key != "" && strings.Contains(fmt.Sprintf("%#v", got), c.Key) {
				t.Fatalf("the result repeats the key: %+v", got)
			}
		})
	}
}

func TestConformanceDocuments(t *testing.T) {
	var cases []struct{ Document, Error string }
	readJSON(t, "document-cases.json", &cases)
	for _, c := range cases {
		t.Run(c.Document, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(testdata, "documents", c.Document))
			must(t, err)
			doc, err := ParseDocument(data)
			if err == nil {
				t.Fatalf("ParseDocument accepted it: %+v", doc)
			}
			if c.Error == "not JSON" {
				if !strings.HasPrefix(err.Error(), "not JSON") {
					t.Fatalf("error = %q, want one starting with %q", err, c.Error)
				}
			} else if err.Error() != c.Error {
				t.Fatalf("error = %q, want %q", err, c.Error)
			}
		})
	}
}

func loadDocument(t *testing.T, name string) *Verifier {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testdata, "documents", name))
	must(t, err)
	doc, err := ParseDocument(data)
	must(t, err)
	v, err := New(doc)
	must(t, err)
	return v
}
