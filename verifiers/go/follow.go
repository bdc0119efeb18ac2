package verify

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultInterval is how often a Follower looks for an update when FollowOptions does not say.
const DefaultInterval = time.Second

// FollowOptions say how a Follower follows its file. The zero value is usable.
type FollowOptions struct {
	// Interval is how often the file is checked for an update; zero or less means DefaultInterval.
	Interval time.Duration
	// OnReload, if set, is told each new revision loaded.
	OnReload func(revision int64)
	// OnError, if set, is told of an update that could not be read or parsed; the verifier in
	// use stays. Each failure is told once, not again at every check while the file is unchanged.
	OnError func(err error)
}

// A Follower verifies keys against a mounted verifier file and follows its updates. It is safe
// for concurrent use. Its callbacks are called from its own goroutine, one at a time; as Close
// waits for that goroutine, a callback must not call Close.
//
// The kubelet updates a mounted Secret by writing a new folder and swapping the `..data` symlink
// to it. With the standard library only there is no file watch, so a Follower polls: at every
// interval it looks where `..data` points and stats the file, and only when either changed does it
// read the file, reloading if the content differs (the content, not the revision: a document
// rewritten under the same revision must not be ignored). A file that cannot be read or parsed
// leaves the current verifier in place, so keys keep verifying.
type Follower struct {
	file     string
	opts     FollowOptions
	verifier atomic.Pointer[Verifier]
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once

	// Owned by the polling goroutine.
	content []byte
	seen    stamp
}

// Follow loads the verifier document in file, typically /etc/…/verifier.json in a mounted Secret,
// and follows its updates until Close. The first load must succeed.
func Follow(file string, opts FollowOptions) (*Follower, error) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	f := &Follower{file: file, opts: opts, stop: make(chan struct{}), done: make(chan struct{})}
	// The stamp is taken before the read: an update in between is then read again at the first
	// poll rather than missed.
	f.seen = stampOf(file)
	content, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	v, err := load(content)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	f.content = content
	f.verifier.Store(v)
	go f.follow()
	return f, nil
}

// Verifier returns the verifier in use, to make several checks against one revision.
func (f *Follower) Verifier() *Verifier { return f.verifier.Load() }

// Revision returns the revision in use.
func (f *Follower) Revision() int64 { return f.Verifier().Revision() }

// Verify is Verifier.Verify with the verifier in use.
func (f *Follower) Verify(key string) Result { return f.Verifier().Verify(key) }

// VerifyScope is Verifier.VerifyScope with the verifier in use.
func (f *Follower) VerifyScope(key, scope string) Result { return f.Verifier().VerifyScope(key, scope) }

// VerifyOptions is Verifier.VerifyOptions with the verifier in use.
func (f *Follower) VerifyOptions(key string, opts Options) Result {
	return f.Verifier().VerifyOptions(key, opts)
}

// Close stops following; the verifier in use stays usable. Once Close returns, no callback is
// running or will be called. It always returns nil.
func (f *Follower) Close() error {
	f.once.Do(func() { close(f.stop) })
	<-f.done
	return nil
}

func (f *Follower) follow() {
	defer close(f.done)
	ticker := time.NewTicker(f.opts.Interval)
	defer ticker.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-ticker.C:
			f.poll()
		}
	}
}

// poll reloads the file if it changed since the last poll.
func (f *Follower) poll() {
	now := stampOf(f.file)
	if now.same(f.seen) {
		return
	}
	// Whatever follows, this version of the file has been seen: a bad one is reported once.
	f.seen = now
	if now.err != nil {
		f.fail(now.err)
		return
	}
	content, err := os.ReadFile(f.file)
	if err != nil {
		f.fail(err)
		return
	}
	if bytes.Equal(content, f.content) {
		return
	}
	v, err := load(content)
	if err != nil {
		f.fail(fmt.Errorf("%s: %w", f.file, err))
		return
	}
	f.content = content
	f.verifier.Store(v)
	if f.opts.OnReload != nil {
		f.opts.OnReload(v.Revision())
	}
}

func (f *Follower) fail(err error) {
	if f.opts.OnError != nil {
		f.opts.OnError(err)
	}
}

func load(content []byte) (*Verifier, error) {
	doc, err := ParseDocument(content)
	if err != nil {
		return nil, err
	}
	return New(doc)
}

// stamp is what tells a file changed without reading it.
type stamp struct {
	target string      // where the folder's `..data` points; "" if it is not a Secret volume
	info   os.FileInfo // the file, through its symlinks; nil if err is set
	err    error
}

func stampOf(file string) stamp {
	target, _ := os.Readlink(filepath.Join(filepath.Dir(file), "..data"))
	info, err := os.Stat(file)
	return stamp{target: target, info: info, err: err}
}

// same reports whether s and t are the same version of the file: the same `..data` target, and the
// same file (device and inode), size and modification time; or the same failure to stat it.
func (s stamp) same(t stamp) bool {
	if s.target != t.target || (s.info == nil) != (t.info == nil) {
		return false
	}
	if s.info == nil {
		return s.err != nil && t.err != nil && s.err.Error() == t.err.Error()
	}
	return os.SameFile(s.info, t.info) && s.info.Size() == t.info.Size() &&
		s.info.ModTime().Equal(t.info.ModTime())
}
