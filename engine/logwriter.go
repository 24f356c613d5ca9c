package engine

import (
	"bytes"
	"net/url"
	"strings"
	"sync"
	"time"
)

// lineWriter turns a byte stream (build output, git progress) into lines
// and hands them to flush in batches: at most every flushEvery, or when a
// batch is full. Carriage-return progress updates keep only their last state.
type lineWriter struct {
	mu      sync.Mutex
	partial []byte
	batch   []string
	flush   func([]string)
	timer   *time.Timer
	closed  bool
}

const (
	flushEvery   = 200 * time.Millisecond
	maxBatch     = 256
	maxLineBytes = 8 << 10
)

func newLineWriter(flush func([]string)) *lineWriter { return &lineWriter{flush: flush} }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.add(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) > maxLineBytes {
		w.add(string(w.partial))
		w.partial = w.partial[:0]
	}
	if len(w.batch) >= maxBatch {
		w.flushLocked()
	} else if len(w.batch) > 0 && w.timer == nil && !w.closed {
		w.timer = time.AfterFunc(flushEvery, w.Flush)
	}
	return len(p), nil
}

func (w *lineWriter) add(line string) {
	line = strings.TrimRight(line, "\r")
	if i := strings.LastIndexByte(line, '\r'); i >= 0 {
		line = line[i+1:]
	}
	if len(line) > maxLineBytes {
		line = line[:maxLineBytes] + "…"
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
		w.add(string(w.partial))
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
