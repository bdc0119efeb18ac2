package verify

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// follower follows a Secret volume written at generation 1 with doc. With an interval of an hour
// the test polls by hand: what it checks does not then depend on timing.
func follower(t *testing.T, doc []byte, interval time.Duration) (f *Follower, dir string, errs chan error) {
	t.Helper()
	dir = t.TempDir()
	writeSecretVolume(t, dir, map[string]string{File: string(doc)}, 1)
	errs = make(chan error, 100)
	f, err := Follow(filepath.Join(dir, File), FollowOptions{
		Interval: interval,
		OnError:  func(err error) { errs <- err },
	})
	must(t, err)
	t.Cleanup(func() { f.Close() })
	return f, dir, errs
}

func TestFollowReloadsAnUpdate(t *testing.T) {
	current, next := testKey(1, "production", 256), testKey(2, "production", 256)
	f, dir, errs := follower(t, documentJSON(t, 1, current), time.Hour)
	if r := f.Verify(current); !r.Valid || f.Revision() != 1 {
		t.Fatalf("revision %d: %+v", f.Revision(), r)
	}

	writeSecretVolume(t, dir, map[string]string{File: string(documentJSON(t, 2, current, next))}, 2)
	f.poll()
	if r := f.Verify(next); !r.Valid || f.Revision() != 2 {
		t.Fatalf("after an update, revision %d: %+v", f.Revision(), r)
	}

	// The content tells a change, not the revision.
	writeSecretVolume(t, dir, map[string]string{File: string(documentJSON(t, 2, next))}, 3)
	f.poll()
	if r := f.Verify(current); r.Reason != Unknown {
		t.Fatalf("after the same revision without the key: %+v", r)
	}
	if len(errs) > 0 {
		t.Fatal(<-errs)
	}
}

func TestFollowKeepsTheVerifierOnABadUpdate(t *testing.T) {
	key := testKey(1, "production", 256)
	f, dir, errs := follower(t, documentJSON(t, 7, key), time.Hour)

	writeSecretVolume(t, dir, map[string]string{File: `{"apiVersion": "keyrotor.dev/verifier/v1",`}, 2)
	f.poll()
	f.poll() // the same bad file is reported once
	var docErr *DocumentError
	if len(errs) != 1 || !errors.As(<-errs, &docErr) || !strings.HasPrefix(docErr.Error(), "not JSON") {
		t.Fatalf("want one DocumentError, got %d errors", len(errs)+1)
	}
	if r := f.Verify(key); !r.Valid || f.Revision() != 7 {
		t.Fatalf("after a bad update, revision %d: %+v", f.Revision(), r)
	}

	// A file gone, then back.
	must(t, os.Remove(filepath.Join(dir, File)))
	f.poll()
	f.poll()
	if err := <-errs; !errors.Is(err, os.ErrNotExist) || len(errs) != 0 {
		t.Fatalf("want one not-exist error, got %v and %d more", err, len(errs))
	}
	writeSecretVolume(t, dir, map[string]string{File: string(documentJSON(t, 8, key))}, 3)
	f.poll()
	if f.Revision() != 8 || len(errs) != 0 {
		t.Fatalf("revision %d, %d errors", f.Revision(), len(errs))
	}
}

// The polling goroutine picks an update up by itself and tells OnReload.
func TestFollowPolls(t *testing.T) {
	key := testKey(1, "production", 256)
	dir := t.TempDir()
	writeSecretVolume(t, dir, map[string]string{File: string(documentJSON(t, 1, key))}, 1)
	reloads, errs := make(chan int64, 10), make(chan error, 10)
	f, err := Follow(filepath.Join(dir, File), FollowOptions{
		Interval: 5 * time.Millisecond,
		OnReload: func(revision int64) { reloads <- revision },
		OnError:  func(err error) { errs <- err },
	})
	must(t, err)
	defer f.Close()

	writeSecretVolume(t, dir, map[string]string{File: string(documentJSON(t, 2, key))}, 2)
	select {
	case revision := <-reloads:
		if revision != 2 || f.Revision() != 2 {
			t.Fatalf("reloaded revision %d, in use %d", revision, f.Revision())
		}
	case err := <-errs:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("the update was not picked up")
	}

	writeSecretVolume(t, dir, map[string]string{File: "[]"}, 3)
	select {
	case err := <-errs:
		if err.Error() != filepath.Join(dir, File)+": must be a JSON object" {
			t.Fatalf("error = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the bad update was not reported")
	}
	if r := f.Verify(key); !r.Valid || f.Revision() != 2 {
		t.Fatalf("after a bad update, revision %d: %+v", f.Revision(), r)
	}

	// Close stops the polling goroutine, and may be called again.
	must(t, f.Close())
	select {
	case <-f.done:
	default:
		t.Fatal("still polling after Close")
	}
	must(t, f.Close())
}

func TestFollowNeedsAFirstDocument(t *testing.T) {
	dir := t.TempDir()
	if _, err := Follow(filepath.Join(dir, File), FollowOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Follow of no file: %v", err)
	}
	writeSecretVolume(t, dir, map[string]string{File: "{}"}, 1)
	if _, err := Follow(filepath.Join(dir, File), FollowOptions{}); err == nil ||
		!strings.HasSuffix(err.Error(), "apiVersion must be keyrotor.dev/verifier/v1, not undefined") {
		t.Fatalf("Follow of a bad document: %v", err)
	}
}
