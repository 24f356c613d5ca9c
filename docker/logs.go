package docker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/berthhq/berth"
)

// maxLine bounds a log line kept in memory; a longer line is cut into
// pieces of this size.
const maxLine = 64 << 10

// Logs writes a container's output (stdout and stderr) to w, one whole line
// ending in "\n" per Write, in order: the last tail lines, or all of them
// when tail < 0. With follow set it keeps streaming until ctx ends or the
// container stops; the end of ctx is then not an error.
func (e *Engine) Logs(ctx context.Context, id string, tail int, follow bool, w io.Writer) error {
	const op = "container logs"
	if err := checkObject(op, "container", id); err != nil {
		return err
	}
	r, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return wrap(op, fmt.Errorf("inspect container %s: %w", id, err))
	}
	tty := r.Container.Config != nil && r.Container.Config.Tty
	tailOpt := "all"
	if tail >= 0 {
		tailOpt = strconv.Itoa(tail)
	}
	rc, err := e.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{
		ShowStdout: true, ShowStderr: true, Follow: follow, Tail: tailOpt,
	})
	if err != nil {
		if follow && ctx.Err() != nil {
			return nil
		}
		return wrap(op, fmt.Errorf("read logs of %s: %w", id, err))
	}
	defer rc.Close()
	stdout, stderr := &lineWriter{w: w}, &lineWriter{w: w}
	if tty {
		_, err = io.Copy(stdout, rc)
	} else {
		_, err = stdcopy.StdCopy(stdout, stderr, rc)
	}
	if ferr := stdout.flush(); err == nil {
		err = ferr
	}
	if ferr := stderr.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		if follow && ctx.Err() != nil {
			return nil
		}
		return berth.Wrap(op, berth.Unavailable, fmt.Errorf("read logs of %s: %w", id, err))
	}
	return nil
}

// lineWriter passes whole lines to w, keeping a partial line until its end
// arrives (or flush is called).
type lineWriter struct {
	w   io.Writer
	buf []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.buf = append(l.buf, p...)
			for len(l.buf) >= maxLine {
				if err := l.emit(l.buf[:maxLine]); err != nil {
					return 0, err
				}
				l.buf = append(l.buf[:0], l.buf[maxLine:]...)
			}
			break
		}
		l.buf = append(l.buf, p[:i]...)
		p = p[i+1:]
		if err := l.emit(l.buf); err != nil {
			return 0, err
		}
		l.buf = l.buf[:0]
	}
	return n, nil
}

func (l *lineWriter) emit(line []byte) error {
	out := make([]byte, 0, len(line)+1)
	out = append(out, line...)
	out = append(out, '\n')
	_, err := l.w.Write(out)
	return err
}

func (l *lineWriter) flush() error {
	if len(l.buf) == 0 {
		return nil
	}
	err := l.emit(l.buf)
	l.buf = l.buf[:0]
	return err
}
