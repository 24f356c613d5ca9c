package git_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/egress"
	"github.com/berthhq/berth/git"
)

// fakeAPI is a local stand-in for a provider's API: it records every
// request and answers with code (201 by default).
type fakeAPI struct {
	mu   sync.Mutex
	reqs []recorded
	code int
	body string
	srv  *httptest.Server
}

type recorded struct {
	Method, RequestURI string
	Header             http.Header
	Body               map[string]string
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{code: http.StatusCreated}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]string
		_ = json.Unmarshal(b, &body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{r.Method, r.RequestURI, r.Header.Clone(), body})
		code, resp := f.code, f.body
		f.mu.Unlock()
		if code >= 300 && code < 400 {
			w.Header().Set("Location", "http://elsewhere.example.com/steal")
		}
		w.WriteHeader(code)
		io.WriteString(w, resp)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

const sha = "0123456789abcdef0123456789abcdef01234567"

func TestPostStatusPerProvider(t *testing.T) {
	post := git.NewStatuses(egress.Policy{AllowPrivate: true}, 0)
	for _, c := range []struct {
		provider berth.Provider
		repo     string
		basePath string
		state    berth.CommitState
		wantURI  string
		wantAuth func(h http.Header) bool
		want     map[string]string
	}{
		{berth.GitHub, "acme/web", "", berth.CommitSuccess, "/repos/acme/web/statuses/" + sha,
			func(h http.Header) bool {
				return h.Get("Authorization") == "Bearer tok-123" && h.Get("X-GitHub-Api-Version") == "2022-11-28" && h.Get("Accept") == "application/vnd.github+json"
			},
			map[string]string{"state": "success", "target_url": "https://pr-7.web.example.com", "description": "Preview live", "context": "berth/preview"}},
		{berth.GitLab, "group/sub/web", "/api/v4", berth.CommitFailure, "/api/v4/projects/group%2Fsub%2Fweb/statuses/" + sha,
			func(h http.Header) bool { return h.Get("PRIVATE-TOKEN") == "tok-123" && h.Get("Authorization") == "" },
			map[string]string{"state": "failed", "target_url": "https://pr-7.web.example.com", "description": "Preview live", "name": "berth/preview"}},
		{berth.GitLab, "group/web", "/api/v4", berth.CommitError, "/api/v4/projects/group%2Fweb/statuses/" + sha,
			func(h http.Header) bool { return h.Get("PRIVATE-TOKEN") == "tok-123" },
			map[string]string{"state": "canceled", "target_url": "https://pr-7.web.example.com", "description": "Preview live", "name": "berth/preview"}},
		{berth.Gitea, "acme/web", "/api/v1", berth.CommitPending, "/api/v1/repos/acme/web/statuses/" + sha,
			func(h http.Header) bool { return h.Get("Authorization") == "token tok-123" },
			map[string]string{"state": "pending", "target_url": "https://pr-7.web.example.com", "description": "Preview live", "context": "berth/preview"}},
		{berth.Bitbucket, "team/web", "/2.0", berth.CommitPending, "/2.0/repositories/team/web/commit/" + sha + "/statuses/build",
			func(h http.Header) bool { return h.Get("Authorization") == "Bearer tok-123" },
			map[string]string{"state": "INPROGRESS", "url": "https://pr-7.web.example.com", "description": "Preview live", "key": "berth-preview", "name": "berth/preview"}},
		{berth.Bitbucket, "team/web", "/2.0", berth.CommitError, "/2.0/repositories/team/web/commit/" + sha + "/statuses/build",
			func(h http.Header) bool { return h.Get("Authorization") == "Bearer tok-123" },
			map[string]string{"state": "STOPPED", "url": "https://pr-7.web.example.com", "description": "Preview live", "key": "berth-preview", "name": "berth/preview"}},
	} {
		t.Run(string(c.provider)+"/"+string(c.state), func(t *testing.T) {
			f := newFakeAPI(t)
			st := berth.CommitStatus{Provider: c.provider, Repo: c.repo, SHA: sha, State: c.state,
				TargetURL: "https://pr-7.web.example.com", Description: "Preview live"}
			if err := post.PostStatus(context.Background(), berth.StatusAPI{BaseURL: f.srv.URL + c.basePath, Token: "tok-123"}, st); err != nil {
				t.Fatal(err)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != "POST" || r.RequestURI != c.wantURI {
				t.Errorf("request %s %s, want POST %s", r.Method, r.RequestURI, c.wantURI)
			}
			if !c.wantAuth(r.Header) {
				t.Errorf("auth headers %v", r.Header)
			}
			if r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("content type %q", r.Header.Get("Content-Type"))
			}
			if len(r.Body) != len(c.want) {
				t.Errorf("body %v, want %v", r.Body, c.want)
			}
			for k, v := range c.want {
				if r.Body[k] != v {
					t.Errorf("body[%s] = %q, want %q", k, r.Body[k], v)
				}
			}
		})
	}
}

func TestPostStatusBitbucketBasicAuth(t *testing.T) {
	f := newFakeAPI(t)
	post := git.NewStatuses(egress.Policy{AllowPrivate: true}, 0)
	st := berth.CommitStatus{Provider: berth.Bitbucket, Repo: "team/web", SHA: sha, State: berth.CommitSuccess, TargetURL: "https://x.example.com"}
	if err := post.PostStatus(context.Background(), berth.StatusAPI{BaseURL: f.srv.URL, Token: "alice:app-pass"}, st); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "/", nil)
	req.Header = f.requests()[0].Header
	if u, p, ok := req.BasicAuth(); !ok || u != "alice" || p != "app-pass" {
		t.Errorf("basic auth %q %q %v", u, p, ok)
	}
}

func TestPostStatusErrors(t *testing.T) {
	ctx := context.Background()
	open := git.NewStatuses(egress.Policy{AllowPrivate: true}, 0)
	st := berth.CommitStatus{Provider: berth.GitHub, Repo: "acme/web", SHA: sha, State: berth.CommitPending, Description: "Deploying"}
	const token = "ghp_secret-token-value"
	for _, c := range []struct {
		name string
		code int
		body string
		kind berth.Kind
		want string
	}{
		{"bad token", 401, `{"message":"Bad credentials"}`, berth.Invalid, "refused the status token (401: Bad credentials)"},
		{"no access", 404, `{"message":"Not Found"}`, berth.Invalid, "no repository acme/web"},
		{"down", 503, `<html>`, berth.Unavailable, "answered 503"},
		{"rate limited", 429, `{}`, berth.Unavailable, "answered 429"},
		{"validation", 422, `{"message":"Validation Failed"}`, berth.Invalid, "answered 422: Validation Failed"},
		{"redirect", 301, ``, berth.Invalid, "set the API's own base URL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeAPI(t)
			f.code, f.body = c.code, c.body
			err := open.PostStatus(ctx, berth.StatusAPI{BaseURL: f.srv.URL, Token: token}, st)
			if !berth.IsKind(err, c.kind) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %s containing %q", err, c.kind, c.want)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("the error holds the token: %v", err)
			}
			if n := len(f.requests()); n != 1 {
				t.Errorf("%d requests, want 1 (a redirect is not followed)", n)
			}
		})
	}

	// The default egress policy refuses the loopback address: nothing is sent.
	f := newFakeAPI(t)
	public := git.NewStatuses(egress.Policy{}, 0)
	if err := public.PostStatus(ctx, berth.StatusAPI{BaseURL: f.srv.URL, Token: token}, st); !berth.IsKind(err, berth.Invalid) || !strings.Contains(err.Error(), "not a public address") {
		t.Errorf("loopback API with public egress only: %v", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests reached a refused address", n)
	}

	// Settings that cannot work are refused before any request.
	for name, c := range map[string]struct {
		api berth.StatusAPI
		st  berth.CommitStatus
	}{
		"gitea without base": {berth.StatusAPI{Token: token}, berth.CommitStatus{Provider: berth.Gitea, Repo: "a/b", SHA: sha, State: berth.CommitPending}},
		"no token":           {berth.StatusAPI{BaseURL: f.srv.URL}, st},
		"bad base":           {berth.StatusAPI{BaseURL: "ftp://x", Token: token}, st},
		"hostile repo":       {berth.StatusAPI{BaseURL: f.srv.URL, Token: token}, berth.CommitStatus{Provider: berth.GitHub, Repo: "a/../../admin", SHA: sha, State: berth.CommitPending}},
		"short sha":          {berth.StatusAPI{BaseURL: f.srv.URL, Token: token}, berth.CommitStatus{Provider: berth.GitHub, Repo: "a/b", SHA: "abc", State: berth.CommitPending}},
	} {
		if err := open.PostStatus(ctx, c.api, c.st); !berth.IsKind(err, berth.Invalid) {
			t.Errorf("%s: %v, want Invalid", name, err)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests sent for settings that cannot work", n)
	}
}

func TestPostStatusDescriptionClipped(t *testing.T) {
	f := newFakeAPI(t)
	post := git.NewStatuses(egress.Policy{AllowPrivate: true}, 0)
	long := strings.Repeat("é", 200) + "\nsecond line"
	st := berth.CommitStatus{Provider: berth.GitHub, Repo: "acme/web", SHA: sha, State: berth.CommitFailure, Description: long}
	if err := post.PostStatus(context.Background(), berth.StatusAPI{BaseURL: f.srv.URL, Token: "t"}, st); err != nil {
		t.Fatal(err)
	}
	d := f.requests()[0].Body["description"]
	if len(d) > 140 || !strings.HasSuffix(d, "...") || strings.ContainsRune(d, '\uFFFD') || strings.Contains(d, "\n") {
		t.Errorf("description %q (%d bytes)", d, len(d))
	}
}
