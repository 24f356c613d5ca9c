package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/api"
	"github.com/berthhq/berth/docker/dockertest"
)

// fakeGitHub is a local stand-in for GitHub's commit status API.
type fakeGitHub struct {
	mu    sync.Mutex
	posts []map[string]string // body, with "path" and "auth" added
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	body := map[string]string{}
	_ = json.Unmarshal(b, &body)
	body["path"], body["auth"] = r.URL.Path, r.Header.Get("Authorization")
	f.mu.Lock()
	f.posts = append(f.posts, body)
	f.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

func (f *fakeGitHub) find(sha, state string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.posts {
		if strings.HasSuffix(p["path"], "/"+sha) && p["state"] == state {
			return p
		}
	}
	return nil
}

// eventually polls cond for at most within.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("still waiting after %s for %s", within, what)
}

// TestPreviewEnvironment is issue 6's preview path through the real
// binary, Docker, git and proxy: a pull request opened makes
// pr-7.<domain> answer with the request's code and the app's secrets, a
// fork's request gets none, commit statuses reach the provider's API, and
// closing the request removes the containers, the route, the image and the
// volume.
func TestPreviewEnvironment(t *testing.T) {
	berthBin, appBin := binaries(t)
	repo, url := appRepo(t, appBin, "hello", appDockerfile, "hello-main")
	main := repo.Head()
	// The pull requests' heads: refs of the base repository, as GitHub
	// keeps them; main stays where it was.
	repo.Write("message.txt", "hello-pr7\n")
	pr7 := repo.Commit("pull request 7")
	repo.Write("message.txt", "hello-pr8\n")
	pr8 := repo.Commit("pull request 8 (from a fork)")
	repo.Git("update-ref", "refs/pull/7/head", pr7)
	repo.Git("update-ref", "refs/pull/8/head", pr8)
	repo.Git("reset", "-q", "--hard", main)

	gh := &fakeGitHub{}
	ghSrv := httptest.NewServer(gh)
	t.Cleanup(ghSrv.Close)

	s := startServer(t, berthBin)
	s.login()
	s.berth("apps", "create", "hello", "--git", url, "--branch", "main", "--port", "8080", "--volume", "data:/data")
	s.berth("domains", "add", "hello", "hello.localhost")
	s.berth("env", "set", "hello", "GREETING=parent-secret")
	s.berth("deploy", "hello")
	s.wantAnswer("hello.localhost", "hello-main greeting=parent-secret")

	t.Setenv("E2E_STATUS_TOKEN", "gh-e2e-token")
	s.berth("previews", "settings", "hello", "--enable", "--status-api", ghSrv.URL, "--status-token-env", "E2E_STATUS_TOKEN")

	token, err := os.ReadFile(filepath.Join(s.data, "bootstrap-token"))
	if err != nil {
		t.Fatal(err)
	}
	c := api.NewClient(s.api, strings.TrimSpace(string(token)), nil)
	ctx := context.Background()
	event := func(n int, head string, fork bool, action berth.PullRequestAction) string {
		t.Helper()
		out, err := c.PullRequestEvent(ctx, "hello", berth.PullRequest{Provider: berth.GitHub, Repo: "acme/hello", Number: n,
			Action: action, BaseRef: "main", HeadRef: "feature", HeadSHA: head, FetchRef: "refs/pull/" + strconv.Itoa(n) + "/head", Fork: fork})
		if err != nil {
			t.Fatalf("pull request #%d %s: %v", n, action, err)
		}
		return out
	}
	answers := func(host, want string) func() bool {
		return func() bool {
			code, body, err := s.tryGet(host, "/")
			return err == nil && code == 200 && strings.Contains(body, want)
		}
	}

	// Opened: pr-7 answers with the request's code and the app's secrets.
	if out := event(7, pr7, false, berth.PullRequestOpened); !strings.Contains(out, "pr-7.hello.localhost") {
		t.Errorf("outcome %q", out)
	}
	eventually(t, 3*time.Minute, "pr-7.hello.localhost to answer", answers("pr-7.hello.localhost", "hello-pr7 greeting=parent-secret"))
	s.wantAnswer("hello.localhost", "hello-main greeting=parent-secret")

	// A fork's request: its code runs without the app's secrets.
	event(8, pr8, true, berth.PullRequestOpened)
	eventually(t, 3*time.Minute, "pr-8.hello.localhost to answer", answers("pr-8.hello.localhost", "hello-pr8 greeting= "))

	// The statuses reached the provider: pending, then success with the URL.
	eventually(t, time.Minute, "the commit statuses of #7", func() bool { return gh.find(pr7, "success") != nil && gh.find(pr7, "pending") != nil })
	ok := gh.find(pr7, "success")
	if ok["path"] != "/repos/acme/hello/statuses/"+pr7 || ok["auth"] != "Bearer gh-e2e-token" || ok["context"] != "berth/preview" ||
		ok["target_url"] != "http://pr-7.hello.localhost:"+s.proxy[strings.LastIndex(s.proxy, ":")+1:] {
		t.Errorf("success status %v", ok)
	}
	eventually(t, time.Minute, "the commit status of #8", func() bool { return gh.find(pr8, "success") != nil })
	if d := gh.find(pr8, "success")["description"]; !strings.Contains(d, "no secrets until a member approves") {
		t.Errorf("fork's status description %q", d)
	}
	var list []berth.Preview
	mustJSON(t, s.berth("previews", "list", "hello", "-o", "json"), &list)
	if len(list) != 2 || list[0].Status != berth.PreviewLive || list[1].Status != berth.PreviewLive || list[0].PostError != "" {
		t.Fatalf("previews %+v", list)
	}
	child := list[0].ChildAppID

	// Closed: the containers, the route, the image and the volume go.
	dk := dockertest.Engine(t)
	mine := map[string]string{berth.LabelApp: child}

	// The fork's preview runs on a network of its own: it cannot reach the
	// app's containers, which a preview of the base repository can.
	parent, err := dk.Containers(ctx, map[string]string{berth.LabelApp: list[0].AppID, berth.LabelRole: "app"})
	if err != nil || len(parent) != 1 {
		t.Fatalf("containers of the app: %v, %v", parent, err)
	}
	probe := "/fetch?url=" + neturl.QueryEscape("http://"+parent[0].Name+":8080/")
	if _, body := s.get("pr-7.hello.localhost", probe); !strings.Contains(body, "fetched 200 hello-main") {
		t.Errorf("the preview of #7 fetching the app's container: %q", body)
	}
	if _, body := s.get("pr-8.hello.localhost", probe); !strings.Contains(body, "unreachable") {
		t.Errorf("the fork's preview reached the app's container: %q", body)
	}
	if cs, err := dk.Containers(ctx, mine); err != nil || len(cs) != 1 {
		t.Fatalf("containers of the preview before the close: %d, %v", len(cs), err)
	}
	if vs, err := dk.Volumes(ctx, mine); err != nil || len(vs) != 1 {
		t.Fatalf("volumes of the preview before the close: %v, %v", vs, err)
	}
	if out := event(7, pr7, false, berth.PullRequestClosed); !strings.Contains(out, "tearing down") {
		t.Errorf("close outcome %q", out)
	}
	eventually(t, 2*time.Minute, "the preview's containers to go", func() bool {
		cs, err := dk.Containers(ctx, mine)
		return err == nil && len(cs) == 0
	})
	eventually(t, time.Minute, "the preview of #7 to be gone", func() bool {
		var l []berth.Preview
		mustJSON(t, s.berth("previews", "list", "hello", "-o", "json"), &l)
		return len(l) == 1 && l[0].Number == 8
	})
	if code, _ := s.get("pr-7.hello.localhost", "/"); code != 404 {
		t.Errorf("pr-7.hello.localhost after the close: %d, want the proxy's 404", code)
	}
	if imgs, err := dk.Images(ctx, mine); err != nil || len(imgs) != 0 {
		t.Errorf("images of the preview after the close: %d, %v", len(imgs), err)
	}
	if vs, err := dk.Volumes(ctx, mine); err != nil || len(vs) != 0 {
		t.Errorf("volumes of the preview after the close: %v, %v", vs, err)
	}
	if errOut := s.berthErr("status", "hello-pr-7"); !strings.Contains(errOut, "no app named") {
		t.Errorf("the preview's app after the close: %s", errOut)
	}
	// The app and the other preview are untouched.
	s.wantAnswer("hello.localhost", "hello-main greeting=parent-secret")
	s.wantAnswer("pr-8.hello.localhost", "hello-pr8 greeting= ")
}
