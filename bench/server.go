package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/api"
)

// server is a `berth server` process the benchmark runs, stops and kills:
// its own data directory, API port, proxy port and Docker network.
type server struct {
	bin      string
	data     string
	logPath  string
	apiURL   string // http://127.0.0.1:port
	proxy    string // 127.0.0.1:port the proxy container publishes
	network  string
	proc     *proc
	client   *api.Client
	starts   int
	instance string // berth.instance of its Docker objects, once known
}

// start starts the server and waits until its API answers.
func (s *server) start(ctx context.Context) error {
	if s.proc != nil && !s.proc.exited() {
		return errors.New("server already running")
	}
	p, err := startProc("berth server", s.logPath, s.bin, "server", "--data", s.data,
		"--listen", strings.TrimPrefix(s.apiURL, "http://"), "--proxy-listen", s.proxy,
		"--network", s.network, "--log-level", "warn")
	if err != nil {
		return err
	}
	s.proc = p
	s.starts++
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := hc.Get(s.apiURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if p.exited() {
			return fmt.Errorf("berth server exited: %v\n%s", p.err, p.logTail(30))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("berth server not healthy after 90s\n%s", p.logTail(30))
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	if s.client == nil {
		tok, err := os.ReadFile(filepath.Join(s.data, "bootstrap-token"))
		if err != nil {
			return fmt.Errorf("bootstrap token: %w", err)
		}
		s.client = api.NewClient(s.apiURL, strings.TrimSpace(string(tok)), &http.Client{Timeout: 2 * time.Minute})
	}
	return nil
}

// stop ends the server with SIGTERM (SIGKILL after 30 s).
func (s *server) stop() error {
	if s.proc == nil {
		return nil
	}
	return s.proc.stop(syscall.SIGTERM, 30*time.Second)
}

// kill9 kills the server with SIGKILL: no shutdown of any kind.
func (s *server) kill9() error {
	if s.proc == nil {
		return nil
	}
	return s.proc.kill()
}

// ctxFile is a file of a build context.
type ctxFile struct {
	name string
	mode int64
	body []byte
}

// tarContext packs files as an uncompressed tar, the upload format.
func tarContext(files []ctxFile) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// appDockerfile is the Dockerfile of the benchmark's Dockerfile-built app.
const appDockerfile = "FROM scratch\nCOPY app /app\nCOPY message.txt /message.txt\nENTRYPOINT [\"/app\"]\n"

// appContext returns the build context of the app answering message.
func appContext(appBin []byte, message string) []ctxFile {
	return []ctxFile{
		{"Dockerfile", 0o644, []byte(appDockerfile)},
		{"app", 0o755, appBin},
		{"message.txt", 0o644, []byte(message + "\n")},
	}
}

// deployUpload starts a deployment of an upload app from a context.
func (s *server) deployUpload(ctx context.Context, app string, files []ctxFile) (*berth.Deployment, error) {
	tarball, err := tarContext(files)
	if err != nil {
		return nil, err
	}
	return s.client.DeployUpload(ctx, app, bytes.NewReader(tarball), false)
}

// waitDone polls a deployment until it is no longer active.
func (s *server) waitDone(ctx context.Context, app, id string, timeout time.Duration) (*berth.Deployment, error) {
	deadline := time.Now().Add(timeout)
	for {
		d, err := s.client.Deployment(ctx, app, id)
		if err == nil && !d.Status.Active() {
			return d, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return nil, fmt.Errorf("deployment %s: %w", id, err)
			}
			return d, fmt.Errorf("deployment %s of %s still %s after %s", id, app, d.Status, timeout)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// waitSettled waits until app runs exactly its live replicas: the old ones
// of the previous release are gone, so the next deployment starts from a
// quiet app.
func (s *server) waitSettled(ctx context.Context, app string, replicas int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := s.client.Status(ctx, app)
		if err == nil && st.Active == nil && len(st.Containers) == replicas {
			return nil
		}
		if time.Now().After(deadline) {
			n := -1
			if st != nil {
				n = len(st.Containers)
			}
			return fmt.Errorf("app %s: %d containers, want %d, after %s (err %v)", app, n, replicas, timeout, err)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// liveRelease returns the number of the app's live release.
func (s *server) liveRelease(ctx context.Context, app string) (int, error) {
	st, err := s.client.Status(ctx, app)
	if err != nil {
		return 0, err
	}
	if st.Release == nil {
		return 0, fmt.Errorf("app %s has no live release", app)
	}
	return st.Release.Number, nil
}

// stageSeconds returns how long each stage of a deployment took.
func stageSeconds(d *berth.Deployment) map[string]float64 {
	out := map[string]float64{}
	for _, st := range d.Stages {
		if st.EndedAt != nil {
			out[string(st.Stage)] += st.EndedAt.Sub(st.StartedAt).Seconds()
		}
	}
	return out
}

// medianStages returns the median duration of each stage over runs.
func medianStages(runs []map[string]float64) map[string]float64 {
	all := map[string][]float64{}
	for _, r := range runs {
		for k, v := range r {
			all[k] = append(all[k], v)
		}
	}
	out := map[string]float64{}
	for k, v := range all {
		out[k] = median(v)
	}
	return out
}

// stageOrder lists stage names in deployment order, unknown ones last.
func stageOrder(m map[string]float64) []string {
	rank := map[string]int{}
	for i, s := range berth.Statuses {
		rank[string(s)] = i
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		ri, oki := rank[keys[i]]
		rj, okj := rank[keys[j]]
		if oki != okj {
			return oki
		}
		if ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	return keys
}

// waitAnswer polls url (with Host host) every interval until the answer is
// a 200 containing want, and returns when it first was.
func waitAnswer(ctx context.Context, c *http.Client, url, host, want string, interval, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return time.Time{}, err
		}
		if host != "" {
			req.Host = host
		}
		resp, err := c.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && bytes.Contains(b, []byte(want)) {
				return time.Now(), nil
			}
			last = fmt.Sprintf("%d %q", resp.StatusCode, clip(string(b)))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("GET %s (Host %s): no 200 with %q after %s; last answer %s", url, host, want, timeout, last)
		}
		if err := sleep(ctx, interval); err != nil {
			return time.Time{}, err
		}
	}
}
