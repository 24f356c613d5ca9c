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
		pw := &prefixWriter{prefix: prefix + " | ", mu: &mu, w: w}
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

// prefixWriter writes whole lines, prefixed, under a shared lock.
type prefixWriter struct {
	prefix  string
	mu      *sync.Mutex
	w       io.Writer
	partial []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := p.prefix + string(p.partial[:i+1])
		p.partial = p.partial[i+1:]
		p.mu.Lock()
		_, err := io.WriteString(p.w, line)
		p.mu.Unlock()
		if err != nil {
			return 0, err
		}
	}
}
