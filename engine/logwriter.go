package engine

import (
	"bytes"
	"cmp"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Masked replaces the value of an app's env var wherever it appears in
// build output, a deployment's log or an app's runtime logs.
const Masked = "••••••"

// MinMasked is the shortest env var value that is masked: shorter ones
// ("1", "true", "8080") would hide ordinary output and are rarely secret.
const MinMasked = 6

// masker hides secret values in output. A value with several lines is also
// hidden line by line, since output is split into lines before it is
// masked. The nil *masker hides nothing.
type masker struct {
	secrets []string // longest first, so a value is hidden before a part of it
}

// newMasker returns a masker of the values at least MinMasked bytes long,
// or nil when there are none.
func newMasker(values []string) *masker {
	seen := map[string]bool{}
	var out []string
	add := func(v string) {
		if len(v) >= MinMasked && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	for _, v := range values {
		add(v)
		if strings.ContainsAny(v, "\r\n") {
			for _, line := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' }) {
				add(line)
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return &masker{secrets: out}
}

// mask hides every secret in s.
func (m *masker) mask(s string) string {
	if m == nil {
		return s
	}
	for _, v := range m.secrets {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, Masked)
		}
	}
	return s
}

// maskCut masks a piece of a line that was cut in the middle, at its end
// (tail) or its start (head): a secret cut in two is hidden on both sides,
// by masking an end of s that is the start of a secret, or a start of s
// that is the end of one.
func (m *masker) maskCut(s string, head, tail bool) string {
	if m == nil {
		return s
	}
	s = m.mask(s)
	for _, v := range m.secrets {
		for k := min(len(v)-1, len(s)); k > 0; k-- {
			if tail && strings.HasSuffix(s, v[:k]) {
				s = s[:len(s)-k] + Masked
				break
			}
		}
		for k := min(len(v)-1, len(s)); k > 0; k-- {
			if head && strings.HasPrefix(s, v[len(v)-k:]) {
				s = Masked + s[k:]
				break
			}
		}
	}
	return s
}

// lineWriter turns a byte stream (build output, git progress) into lines,
// hides secrets in them, and hands them to flush in batches: at most every
// flushEvery, or when a batch is full. Carriage-return progress updates keep
// only their last state.
type lineWriter struct {
	mu      sync.Mutex
	partial []byte
	cut     bool // the last line was cut at maxLineBytes: partial continues it
	batch   []string
	flush   func([]string)
	mask    *masker
	timer   *time.Timer
	closed  bool
}

const (
	flushEvery   = 200 * time.Millisecond
	maxBatch     = 256
	maxLineBytes = 8 << 10
)

func newLineWriter(flush func([]string), mask *masker) *lineWriter {
	return &lineWriter{flush: flush, mask: mask}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.add(string(w.partial[:i]), false)
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) > maxLineBytes {
		w.add(string(w.partial), true)
		w.partial = w.partial[:0]
	}
	if len(w.batch) >= maxBatch {
		w.flushLocked()
	} else if len(w.batch) > 0 && w.timer == nil && !w.closed {
		w.timer = time.AfterFunc(flushEvery, w.Flush)
	}
	return len(p), nil
}

// add adds a line; cut says it is not whole: the rest follows in the next.
func (w *lineWriter) add(line string, cut bool) {
	line = strings.TrimRight(line, "\r")
	if i := strings.LastIndexByte(line, '\r'); i >= 0 {
		line = line[i+1:]
	}
	head := w.cut
	w.cut = cut
	if len(line) > maxLineBytes {
		line = line[:maxLineBytes]
		cut = true
	}
	if head || cut {
		line = w.mask.maskCut(line, head, cut)
	} else {
		line = w.mask.mask(line)
	}
	if cut {
		line += "…"
	}
	w.batch = append(w.batch, line)
}

// Flush writes the pending lines.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
}

func (w *lineWriter) flushLocked() {
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	if len(w.batch) == 0 {
		return
	}
	lines := w.batch
	w.batch = nil
	w.flush(lines)
}

// Close flushes everything, including an unterminated last line.
func (w *lineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.add(string(w.partial), false)
		w.partial = nil
	}
	w.closed = true
	w.flushLocked()
	return nil
}

// redactURL hides the password of a URL's userinfo for logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}
