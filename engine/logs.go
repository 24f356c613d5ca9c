package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/berthhq/berth"
)

// Logs writes the runtime logs of app's live containers to w, one line per
// write, each prefixed with the replica's name. With opts.Follow it streams
// until ctx ends.
func (e *Engine) Logs(ctx context.Context, app *berth.App, opts LogOptions, w io.Writer) error {
	live, err := e.st.LiveDeployment(ctx, app.TeamID, app.ID)
	if err != nil {
		if berth.IsKind(err, berth.NotFound) {
			return berth.E("logs", berth.NotFound, "%s has no live release", app.Name)
		}
		return fmt.Errorf("logs of %s: %w", app.Name, err)
	}
	// Hide the values of the env the replicas run with, and of the env as
	// it is now.
	rel, err := e.st.Release(ctx, app.TeamID, live.ReleaseID)
	if err != nil {
		return fmt.Errorf("logs of %s: %w", app.Name, err)
	}
	env, err := e.st.Env(ctx, app.TeamID, app.ID)
	if err != nil {
		return fmt.Errorf("logs of %s: %w", app.Name, err)
	}
	values := envValues(env)
	for _, v := range rel.Config.Env {
		values = append(values, v)
	}
	mask := newMasker(values)
	l := e.appLabels(app)
	l[berth.LabelRelease] = live.ReleaseID
	cs, err := e.cfg.Runtime.Containers(ctx, l)
	if err != nil {
		return fmt.Errorf("logs of %s: %w", app.Name, err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(cs))
	for i, c := range cs {
		prefix := replicaName(c.Name)
		pw := &prefixWriter{prefix: prefix + " | ", mu: &mu, w: w, mask: mask}
		wg.Go(func() { errs[i] = e.cfg.Runtime.Logs(ctx, c.ID, opts.Tail, opts.Follow, pw) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("logs of %s: %w", app.Name, err)
		}
	}
	return nil
}

// replicaName shortens "berth-hello-d3-r1-abcdef" to "d3-r1".
func replicaName(name string) string {
	parts := strings.Split(name, "-")
	if len(parts) >= 4 {
		return parts[len(parts)-3] + "-" + parts[len(parts)-2]
	}
	return name
}

// envValues lists the values of env vars.
func envValues(env []berth.EnvVar) []string {
	out := make([]string, len(env))
	for i, v := range env {
		out[i] = v.Value
	}
	return out
}

// maxLogLine is the longest runtime log line passed on whole; a longer one
// is passed on in pieces.
const maxLogLine = 64 << 10

// prefixWriter writes whole lines, prefixed and with secrets hidden, under
// a shared lock.
type prefixWriter struct {
	prefix  string
	mu      *sync.Mutex
	w       io.Writer
	mask    *masker
	partial []byte
	cut     bool // the last piece written was cut: partial continues it
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.partial = append(p.partial, b...)
	for {
		var line string
		if i := bytes.IndexByte(p.partial, '\n'); i >= 0 {
			line = p.prefix + p.mask.maskCut(string(p.partial[:i]), p.cut, false) + "\n"
			p.partial, p.cut = p.partial[i+1:], false
		} else if len(p.partial) > maxLogLine {
			line = p.prefix + p.mask.maskCut(string(p.partial), p.cut, true) + "…\n"
			p.partial, p.cut = p.partial[:0], true
		} else {
			return len(b), nil
		}
		p.mu.Lock()
		_, err := io.WriteString(p.w, line)
		p.mu.Unlock()
		if err != nil {
			return 0, err
		}
	}
}
