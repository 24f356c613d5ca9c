package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/engine"
	"github.com/berthhq/berth/engine/enginetest"
	"github.com/berthhq/berth/store"
)

// testEnv is a real API over a real store (SQLite in a temp dir) and a real
// engine with fake adapters, served over real HTTP.
type testEnv struct {
	t     *testing.T
	st    *store.Store
	fakes *enginetest.Fakes
	api   *Server
	srv   *httptest.Server
	logs  *syncBuffer
	// Tokens of team A ("main"): one per scope. teamB is an admin token of
	// another team.
	tokens map[berth.Scope]string
	teamB  string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// newEnv serves the API over SQLite; each tune func may change the
// engine's configuration before it starts.
func newEnv(t *testing.T, tune ...func(*engine.Config)) *testEnv {
	t.Helper()
	return newEnvAt(t, filepath.Join(t.TempDir(), "berth.db"), tune...)
}

// newEnvAt is newEnv over the store at dsn (a SQLite path or a PostgreSQL
// DSN from storetest.Postgres).
func newEnvAt(t *testing.T, dsn string, tune ...func(*engine.Config)) *testEnv {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dsn, bytes.Repeat([]byte{9}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng, fakes := enginetest.NewWithFakes(t, st, tune...)
	e := &testEnv{t: t, st: st, fakes: fakes, logs: &syncBuffer{}, tokens: map[berth.Scope]string{}}
	now := time.Now()
	admin, err := auth.Bootstrap(ctx, st, now)
	if err != nil || admin == "" {
		t.Fatalf("bootstrap: %q, %v", admin, err)
	}
	e.tokens[berth.ScopeAdmin] = admin
	p := e.principal(admin)
	for _, s := range []berth.Scope{berth.ScopeRead, berth.ScopeReadSecrets, berth.ScopeDeploy, berth.ScopeWrite} {
		secret, _, err := auth.IssueToken(ctx, st, p.Team.ID, p.User.ID, string(s), []berth.Scope{s}, nil, now)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[s] = secret
	}
	teamB := &berth.Team{ID: berth.NewID("team"), Name: "other", CreatedAt: now}
	userB := &berth.User{ID: berth.NewID("user"), Name: "mallory", CreatedAt: now}
	if err := st.CreateTeam(ctx, teamB); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(ctx, userB); err != nil {
		t.Fatal(err)
	}
	if err := st.AddMember(ctx, teamB.ID, userB.ID, berth.RoleOwner); err != nil {
		t.Fatal(err)
	}
	if e.teamB, _, err = auth.IssueToken(ctx, st, teamB.ID, userB.ID, "b", []berth.Scope{berth.ScopeAdmin}, nil, now); err != nil {
		t.Fatal(err)
	}
	e.api = New(Config{Store: st, Engine: eng, Log: slog.New(slog.NewTextHandler(e.logs, nil)),
		GitDir: filepath.Join(t.TempDir(), "git"), GitHook: hookProgram(t)})
	e.api.poll = 20 * time.Millisecond
	e.api.settle = 300 * time.Millisecond // more than the engine's log flush interval
	e.srv = httptest.NewServer(e.api.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

func (e *testEnv) principal(secret string) *auth.Principal {
	e.t.Helper()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	p, err := auth.Authenticate(context.Background(), e.st, req, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *testEnv) client(scope berth.Scope) *Client {
	return NewClient(e.srv.URL, e.tokens[scope], nil)
}

// response is an answer read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) problem(t *testing.T) Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json (status %d, body %s)", ct, r.status, r.body)
	}
	var p Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("decode problem %s: %v", r.body, err)
	}
	if p.Status != r.status || p.Type == "" || p.Title == "" {
		t.Errorf("problem %+v does not match status %d", p, r.status)
	}
	return p
}

// do sends a request with the token (none when ""), a body (a string is
// sent as is, anything else as JSON) and extra headers given as pairs.
func (e *testEnv) do(token, method, path string, body any, headers ...string) response {
	e.t.Helper()
	var r io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		r, ct = strings.NewReader(b), "application/json"
	case []byte:
		r, ct = bytes.NewReader(b), "application/json"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		r, ct = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, e.srv.URL+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// decode decodes a JSON answer, failing unless its status is want.
func decode[T any](t *testing.T, r response, want int) T {
	t.Helper()
	var v T
	if r.status != want {
		t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return v
}

// createApp creates an app with the admin token.
func (e *testEnv) createApp(body map[string]any) berth.App {
	e.t.Helper()
	return decode[berth.App](e.t, e.do(e.tokens[berth.ScopeAdmin], "POST", "/api/v1/apps", body), http.StatusCreated)
}

func gitApp(name string) map[string]any {
	return map[string]any{"name": name, "source": map[string]any{"git": "https://git.example.com/" + name + ".git"}}
}

// deployLive deploys app and waits until the deployment ends, which must be
// live.
func (e *testEnv) deployLive(app string) *berth.Deployment {
	e.t.Helper()
	d := decode[berth.Deployment](e.t, e.do(e.tokens[berth.ScopeDeploy], "POST", "/api/v1/apps/"+app+"/deployments", map[string]any{}), http.StatusAccepted)
	return e.wait(app, d.ID, berth.StatusLive)
}

// wait follows a deployment until it ends and checks its final status.
func (e *testEnv) wait(app, id string, want berth.Status) *berth.Deployment {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := e.client(berth.ScopeRead).FollowDeployment(ctx, app, id, func(berth.LogLine) {}, nil)
	if err != nil {
		e.t.Fatalf("follow %s: %v", id, err)
	}
	if d.Status != want {
		e.t.Fatalf("deployment #%d ended %s (%s), want %s", d.Number, d.Status, d.Error, want)
	}
	return d
}
