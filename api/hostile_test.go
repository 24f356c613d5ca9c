package api

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/git"
)

// hostile returns values built to escape into a shell, an option, a path
// or another host, each carrying a command that would create canary.
func hostile(canary string) []string {
	cmd := "touch " + canary
	return []string{
		"; " + cmd, "a;" + cmd, "$(" + cmd + ")", "`" + cmd + "`", "| " + cmd, "a && " + cmd,
		"a\n" + cmd, "a\r\n" + cmd, "a\x00" + cmd, "--upload-pack=" + cmd, "-oProxyCommand=" + cmd,
		"-" + cmd, "../../" + cmd, "../" + canary, canary, "/etc/passwd", "a/../../" + canary,
		"ａpp-" + cmd, "app\u202e" + cmd, "app\u200b" + cmd, strings.Repeat("a", 5000) + cmd,
		"http://127.0.0.1@evil.example.com/$(" + cmd + ")", "file://" + canary, "ext::sh -c " + cmd,
		"ssh://-oProxyCommand=" + url.PathEscape(cmd) + "/x", "git@-oProxyCommand=" + cmd + ":x",
		"http://169.254.169.254/latest/meta-data", "http://[::1]/x.git", "http://0x7f000001/x.git",
	}
}

// TestHostileInputs sends hostile values for every field that reaches
// Docker, git, the proxy or the file system through the real API and a real
// store. Each must be refused with a 4xx problem or kept strictly as data;
// nothing may run the canary command.
func TestHostileInputs(t *testing.T) {
	e := newEnv(t)
	canary := filepath.Join(t.TempDir(), "canary")
	admin := e.tokens[berth.ScopeAdmin]
	e.createApp(map[string]any{"name": "target", "source": map[string]any{"kind": "upload"}})
	e.createApp(gitApp("gitapp"))
	e.createApp(map[string]any{"name": "withhost", "source": map[string]any{"kind": "upload"}})
	if r := e.do(admin, "POST", "/api/v1/apps/withhost/domains", map[string]any{"host": "app.example.com"}); r.status != http.StatusCreated {
		t.Fatalf("add domain: %d %s", r.status, r.body)
	}

	type field struct {
		name   string
		method string
		path   func(v string) string
		body   func(v string) any
		// data: a value that may be kept as data (a container path, an HTTP
		// path, a build arg): a 2xx must show it back unchanged.
		data bool
		// secret: a value that may be kept but is never shown back (an
		// access token): a 2xx must not contain it.
		secret bool
	}
	app := func(v string) map[string]any {
		return map[string]any{"name": "h", "source": map[string]any{"kind": "upload"}}
	}
	with := func(f func(m map[string]any, v string)) func(string) any {
		return func(v string) any { m := app(v); f(m, v); return m }
	}
	apps := func(string) string { return "/api/v1/apps" }
	previews := func(string) string { return "/api/v1/apps/gitapp/previews" }
	pullRequest := func(f func(m map[string]any, v string)) func(string) any {
		return func(v string) any {
			m := map[string]any{"provider": "github", "repo": "acme/gitapp", "number": 1, "action": "opened",
				"base_ref": "main", "head_ref": "feature", "head_sha": strings.Repeat("a", 40), "fetch_ref": "refs/pull/1/head"}
			f(m, v)
			return m
		}
	}
	fields := []field{
		{name: "app name", method: "POST", path: apps, body: func(v string) any {
			return map[string]any{"name": v, "source": map[string]any{"kind": "upload"}}
		}},
		{name: "git url", method: "POST", path: apps, body: with(func(m map[string]any, v string) { m["source"] = map[string]any{"git": v} })},
		{name: "git ref", method: "POST", path: apps, body: with(func(m map[string]any, v string) {
			m["source"] = map[string]any{"git": "https://git.example.com/a.git", "ref": v}
		})},
		{name: "deploy ref", method: "POST", path: func(string) string { return "/api/v1/apps/gitapp/deployments" }, body: func(v string) any { return map[string]any{"ref": v} }},
		{name: "image", method: "POST", path: apps, body: with(func(m map[string]any, v string) { m["source"] = map[string]any{"image": v} })},
		{name: "volume name", method: "POST", path: apps, body: with(func(m map[string]any, v string) { m["volumes"] = []any{map[string]any{"name": v, "path": "/data"}} })},
		{name: "volume path", method: "POST", path: apps, data: true, body: with(func(m map[string]any, v string) { m["volumes"] = []any{map[string]any{"name": "data", "path": v}} })},
		{name: "health path", method: "POST", path: apps, data: true, body: with(func(m map[string]any, v string) { m["health"] = map[string]any{"path": v} })},
		{name: "dockerfile", method: "POST", path: apps, body: with(func(m map[string]any, v string) { m["build"] = map[string]any{"dockerfile": v} })},
		{name: "build context", method: "POST", path: apps, body: with(func(m map[string]any, v string) { m["build"] = map[string]any{"context": v} })},
		{name: "build target", method: "POST", path: apps, body: with(func(m map[string]any, v string) { m["build"] = map[string]any{"target": v} })},
		{name: "build arg name", method: "POST", path: apps, body: with(func(m map[string]any, v string) { m["build"] = map[string]any{"args": map[string]any{v: "x"}} })},
		{name: "build arg value", method: "POST", path: apps, data: true, body: with(func(m map[string]any, v string) { m["build"] = map[string]any{"args": map[string]any{"ARG": v}} })},
		{name: "env key", method: "PATCH", path: func(string) string { return "/api/v1/apps/target/env" }, body: func(v string) any { return map[string]any{"set": map[string]any{v: "x"}} }},
		{name: "env value", method: "PATCH", path: func(string) string { return "/api/v1/apps/target/env" }, data: true, body: func(v string) any { return map[string]any{"set": map[string]any{"VALUE": v}} }},
		{name: "domain", method: "POST", path: func(string) string { return "/api/v1/apps/target/domains" }, body: func(v string) any { return map[string]any{"host": v} }},
		{name: "domain in path", method: "DELETE", path: func(v string) string { return "/api/v1/apps/target/domains/" + url.PathEscape(v) }, body: func(string) any { return nil }},
		{name: "certificate", method: "PUT", path: func(string) string { return "/api/v1/apps/withhost/domains/app.example.com/certificate" }, body: func(v string) any {
			return map[string]any{"cert_pem": "-----BEGIN CERTIFICATE-----\n" + v + "\n-----END CERTIFICATE-----\n", "key_pem": v}
		}},
		{name: "git username", method: "PUT", path: func(string) string { return "/api/v1/apps/gitapp/git-credentials" }, body: func(v string) any {
			return map[string]any{"username": v, "token": "tok"}
		}},
		{name: "git token", method: "PUT", path: func(string) string { return "/api/v1/apps/gitapp/git-credentials" }, secret: true, body: func(v string) any {
			return map[string]any{"token": v}
		}},
		{name: "known_hosts", method: "PUT", path: func(string) string { return "/api/v1/apps/gitapp/host-keys" }, body: func(v string) any {
			return map[string]any{"known_hosts": v}
		}},
		{name: "known_hosts host", method: "PUT", path: func(string) string { return "/api/v1/apps/gitapp/host-keys" }, body: func(v string) any {
			return map[string]any{"known_hosts": v + " ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"}
		}},
		{name: "preview status api", method: "PUT", path: func(string) string { return "/api/v1/apps/gitapp/previews/settings" }, body: func(v string) any { return map[string]any{"status_api": v} }},
		{name: "preview env key", method: "PUT", path: func(string) string { return "/api/v1/apps/gitapp/previews/settings" }, body: func(v string) any { return map[string]any{"env": map[string]any{v: "x"}} }},
		{name: "pull request fetch ref", method: "POST", path: previews, body: pullRequest(func(m map[string]any, v string) { m["fetch_ref"] = v })},
		{name: "pull request head repo", method: "POST", path: previews, body: pullRequest(func(m map[string]any, v string) { m["head_repo"] = v })},
		{name: "pull request repo", method: "POST", path: previews, body: pullRequest(func(m map[string]any, v string) { m["repo"] = v })},
		{name: "pull request head", method: "POST", path: previews, body: pullRequest(func(m map[string]any, v string) { m["head_sha"] = v })},
		{name: "pull request number", method: "POST", path: func(v string) string { return "/api/v1/apps/gitapp/previews/" + url.PathEscape(v) + "/approve" }, body: func(string) any { return map[string]any{} }},
		{name: "app in path", method: "GET", path: func(v string) string { return "/api/v1/apps/" + url.PathEscape(v) }, body: func(string) any { return nil }},
	}
	for _, f := range fields {
		t.Run(f.name, func(t *testing.T) {
			for _, v := range hostile(canary) {
				body := f.body(v)
				if s, ok := body.(map[string]any); ok && s["name"] == "h" {
					s["name"] = "h" + strings.ToLower(berth.NewID("x")[2:8])
				}
				var r response
				if body == nil {
					r = e.do(admin, f.method, f.path(v), nil)
				} else {
					r = e.do(admin, f.method, f.path(v), body)
				}
				switch {
				case r.status >= 400 && r.status < 500:
					if p := r.problem(t); p.Detail == "" && r.status != http.StatusNotFound {
						t.Errorf("%q: %d without a reason", clip(v), r.status)
					}
				case f.secret && r.status < 300:
					if strings.Contains(string(r.body), v) || strings.Contains(string(r.body), mustJSON(t, v)) {
						t.Errorf("%q: a secret is shown back: %s", clip(v), clip(string(r.body)))
					}
				case f.data && r.status < 300:
					if !strings.Contains(string(r.body), mustJSON(t, v)) && f.name != "env value" {
						t.Errorf("%q: stored value differs: %s", clip(v), clip(string(r.body)))
					}
				default:
					t.Errorf("%q: status %d, want a 4xx: %s", clip(v), r.status, clip(string(r.body)))
				}
				if r.status >= 500 {
					t.Errorf("%q: server error %d", clip(v), r.status)
				}
			}
		})
	}

	// Env values are data: they read back exactly.
	for _, v := range hostile(canary) {
		if strings.ContainsRune(v, 0) || len(v) > berth.MaxEnvValueLen {
			continue
		}
		if r := e.do(admin, "PATCH", "/api/v1/apps/target/env", map[string]any{"set": map[string]any{"VALUE": v}}); r.status != http.StatusOK {
			t.Fatalf("env value %q: %d %s", clip(v), r.status, r.body)
		}
		vars := decode[[]EnvVar](t, e.do(e.tokens[berth.ScopeReadSecrets], "GET", "/api/v1/apps/target/env", nil), http.StatusOK)
		if len(vars) != 1 || vars[0].Value != v {
			t.Fatalf("env value %q read back as %+v", clip(v), vars)
		}
	}

	// Uploaded archives whose paths leave the build context: the
	// deployment fails and nothing is written outside it.
	outside := filepath.Dir(canary)
	for _, name := range []string{"../escape", "../../escape", "/" + filepath.Join(outside, "abs"), "a/../../escape", "-rf", "--upload-pack=x"} {
		archive := tarWith(t, map[string]string{"Dockerfile": "FROM scratch\n", name: "touch " + canary})
		r := e.do(e.tokens[berth.ScopeDeploy], "POST", "/api/v1/apps/target/deployments", archive, "Content-Type", "application/gzip")
		if r.status >= 400 && r.status < 500 {
			continue
		}
		d := decode[berth.Deployment](t, r, http.StatusAccepted)
		got := e.waitEnd("target", d.ID)
		if strings.HasPrefix(name, "-") {
			if got.Status != berth.StatusLive {
				t.Errorf("archive path %q (plain data): deployment %s (%s)", name, got.Status, got.Error)
			}
			continue
		}
		if got.Status != berth.StatusFailed {
			t.Errorf("archive path %q: deployment %s, want failed", name, got.Status)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("files appeared outside the build context: %v", entries)
	}

	// The git values the API refused do nothing in git either: the real
	// fetcher refuses them before git runs.
	f := &git.Fetcher{}
	for _, v := range hostile(canary) {
		if _, err := f.Fetch(context.Background(), berth.FetchRequest{URL: v, Ref: "main", Dir: t.TempDir()}, nil); err == nil || berth.ErrorKind(err) == berth.Internal {
			t.Errorf("fetch URL %q: %v, want refused", clip(v), err)
		}
		if _, err := f.Fetch(context.Background(), berth.FetchRequest{URL: "https://git.example.com/a.git", Ref: v, Dir: t.TempDir()}, nil); !berth.IsKind(err, berth.Invalid) {
			t.Errorf("fetch ref %q: %v, want refused", clip(v), err)
		}
	}

	if _, err := os.Stat(canary); !os.IsNotExist(err) {
		t.Fatalf("the canary %s exists: a hostile value ran a command", canary)
	}
}

func mustJSON(t *testing.T, v string) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tarWith is a gzipped tar of files, names as given.
func tarWith(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// waitEnd follows a deployment until it ends, whatever its end.
func (e *testEnv) waitEnd(app, id string) *berth.Deployment {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := e.client(berth.ScopeRead).FollowDeployment(ctx, app, id, func(berth.LogLine) {}, nil)
	if err != nil {
		e.t.Fatalf("follow %s: %v", id, err)
	}
	return d
}
