package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// janitor undoes what the benchmark set up, in reverse order, exactly
// once, whether the run ended well, failed or was interrupted.
type janitor struct {
	mu    sync.Mutex
	steps []cleanupStep
}

type cleanupStep struct {
	name string
	fn   func(ctx context.Context) error
}

// add registers a cleanup step.
func (j *janitor) add(name string, fn func(ctx context.Context) error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.steps = append(j.steps, cleanupStep{name, fn})
}

// run runs every step, newest first, and returns what failed.
func (j *janitor) run(ctx context.Context) []error {
	j.mu.Lock()
	steps := j.steps
	j.steps = nil
	j.mu.Unlock()
	var errs []error
	for i := len(steps) - 1; i >= 0; i-- {
		if err := steps[i].fn(ctx); err != nil {
			errs = append(errs, fmt.Errorf("cleanup %s: %w", steps[i].name, err))
		}
	}
	return errs
}

// proc is a child process in its own process group, so that a Ctrl-C in
// the terminal reaches only the benchmark, which then stops its children
// in order. Its output goes to a log file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

// startProc starts argv with its output appended to logPath.
func startProc(name, logPath string, argv ...string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits up to grace for the process to end, then kills
// its whole process group (nginx's workers, for instance).
func (p *proc) stop(sig syscall.Signal, grace time.Duration) error {
	if p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	select {
	case <-p.done:
		return fmt.Errorf("%s did not stop within %s after %s: killed", p.name, grace, sig)
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) survived SIGKILL", p.name, p.pid())
	}
}

// kill sends SIGKILL to the process alone (not its group) and waits.
func (p *proc) kill() error {
	if p.exited() {
		return nil
	}
	if err := p.cmd.Process.Kill(); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) survived SIGKILL", p.name, p.pid())
	}
}

// logTail returns the last n lines of the process's log.
func (p *proc) logTail(n int) string { return fileTail(p.logPath, n) }

// fileTail returns the last n lines of a file, or "" when it cannot be read.
func fileTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// freeAddr returns "127.0.0.1:port" for a free port.
func freeAddr() (string, error) {
	p, err := freePort()
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(p), nil
}

// waitTCP waits until addr accepts a connection.
func waitTCP(ctx context.Context, addr string, timeout time.Duration, p *proc) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.logTail(20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not accept connections after %s: %w", addr, timeout, err)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// moduleRoot returns the directory of the berth module the benchmark runs
// in (go run ./bench from the repository).
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the berth module: run `go run ./bench` from the repository")
	}
	return filepath.Dir(mod), nil
}

// buildBinaries compiles the berth binary and the benchmark's app, both
// static (CGO_ENABLED=0: the proxy image and the app image are FROM
// scratch), into dir.
func buildBinaries(ctx context.Context, root, dir string) (berthBin, appBin string, err error) {
	berthBin, appBin = filepath.Join(dir, "berth"), filepath.Join(dir, "app")
	builds := []struct {
		out, pkg string
		flags    []string
	}{
		{berthBin, "./cmd/berth", nil},
		{appBin, "./bench/app", []string{"-ldflags=-s -w"}},
	}
	errs := make([]error, len(builds))
	var wg sync.WaitGroup
	for i, b := range builds {
		wg.Go(func() {
			args := append([]string{"build", "-trimpath"}, b.flags...)
			args = append(args, "-o", b.out, b.pkg)
			cmd := exec.CommandContext(ctx, "go", args...)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out)
			}
		})
	}
	wg.Wait()
	return berthBin, appBin, errors.Join(errs...)
}

// procStatus reads memory figures (kB) from /proc/PID/status.
type procStatus struct {
	VmRSS, RssAnon, RssFile, VmHWM int64
}

func readProcStatus(pid int) (procStatus, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return procStatus{}, err
	}
	return parseProcStatus(string(b))
}

// parseProcStatus reads the memory lines of a /proc/PID/status text.
func parseProcStatus(s string) (procStatus, error) {
	var st procStatus
	fields := map[string]*int64{"VmRSS:": &st.VmRSS, "RssAnon:": &st.RssAnon, "RssFile:": &st.RssFile, "VmHWM:": &st.VmHWM}
	found := false
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		if p, ok := fields[f[0]]; ok {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return st, fmt.Errorf("%s %q: %w", f[0], f[1], err)
			}
			*p = n
			found = found || f[0] == "VmRSS:"
		}
	}
	if !found {
		return st, errors.New("no VmRSS line")
	}
	return st, nil
}
