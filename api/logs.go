package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/engine"
)

// logOptions reads the "tail" (a number, or "all") and "follow" query
// parameters of the runtime logs route.
func logOptions(r *http.Request) (engine.LogOptions, error) {
	const op = "read query"
	q := r.URL.Query()
	opts := engine.LogOptions{Tail: 100}
	switch v := q.Get("tail"); v {
	case "":
	case "all":
		opts.Tail = -1
	default:
		n, err := strconv.Atoi(v)
		if err != nil || n < -1 || n > 100000 {
			return opts, berth.E(op, berth.Invalid, "tail must be a number from 0 to 100000, or all")
		}
		opts.Tail = n
	}
	if v := q.Get("follow"); v != "" {
		f, err := strconv.ParseBool(v)
		if err != nil {
			return opts, berth.E(op, berth.Invalid, "follow must be true or false")
		}
		opts.Follow = f
	}
	return opts, nil
}

// lineWriter passes each write of the engine (one log line) to the client
// and flushes it, as text or as an SSE "log" event. The engine may write
// from one goroutine per container, so writes are serialized.
type lineWriter struct {
	mu  sync.Mutex
	w   http.ResponseWriter
	ev  *eventStream // nil for plain text
	rc  *http.ResponseController
	seq int64
	now func() berth.LogLine
}

func (lw *lineWriter) Write(b []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.ev == nil {
		if _, err := lw.w.Write(b); err != nil {
			return 0, err
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			if _, err := lw.w.Write([]byte{'\n'}); err != nil {
				return 0, err
			}
		}
		return len(b), lw.rc.Flush()
	}
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		lw.seq++
		l := lw.now()
		l.Seq, l.Text = lw.seq, line
		if err := lw.ev.send("log", strconv.FormatInt(l.Seq, 10), l); err != nil {
			return 0, err
		}
	}
	return len(b), lw.ev.flush()
}

// keepAlive sends a ": ping" comment on the event stream every interval,
// between the engine's writes, so that a quiet app's stream stays open
// through proxies and browsers. The returned func stops it; the handler
// calls it before it writes to the stream itself again.
func (lw *lineWriter) keepAlive(every time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				lw.mu.Lock()
				// A failed write means the client left: the engine's
				// next write, or its context, ends the stream.
				if lw.ev.comment("ping") == nil {
					_ = lw.ev.flush()
				}
				lw.mu.Unlock()
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// appLogs streams the runtime logs of an app's live containers.
func (s *Server) appLogs(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	opts, err := logOptions(r)
	if err != nil {
		return err
	}
	lw := &lineWriter{w: w, rc: http.NewResponseController(w), now: func() berth.LogLine { return berth.LogLine{Time: s.now().UTC()} }}
	stopPing := func() {}
	if wantsSSE(r) {
		lw.ev = startEvents(w)
		// Send the headers now: a follower of a quiet app would otherwise
		// wait for its first line to learn the stream is open.
		if err := lw.ev.flush(); err != nil {
			return nil // the client went away
		}
		stopPing = lw.keepAlive(s.ping)
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_ = lw.rc.SetWriteDeadline(time.Time{})
	}
	err = s.engine.Logs(r.Context(), a, opts, lw)
	stopPing()
	if err != nil {
		if r.Context().Err() != nil {
			return nil // the client went away
		}
		return fmt.Errorf("logs of %s: %w", a.Name, err)
	}
	if lw.ev != nil {
		return lw.ev.send("end", "", struct{}{})
	}
	return nil
}
