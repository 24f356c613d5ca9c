package git_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/egress"
	"github.com/berthhq/berth/git"
	"github.com/berthhq/berth/git/gittest"
)

// local lets the tests fetch from the repositories they serve on 127.0.0.1.
var local = egress.Policy{AllowPrivate: true}

// TestFetchRefusesPrivateAddresses: a server that does not allow private
// egress never lets git reach loopback or the metadata service, whether the
// URL names the address or a name resolves to it.
func TestFetchRefusesPrivateAddresses(t *testing.T) {
	h := newHistory(t)
	var hits atomic.Int32
	base := gittest.Serve(t, map[string]*gittest.Repo{"app": h.repo})
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "no", http.StatusNotFound)
	}))
	defer counting.Close()
	u, _ := url.Parse(base)
	strict := egress.Policy{Resolve: func(_ context.Context, host string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil // every name rebinds to loopback
	}}
	f := &git.Fetcher{Egress: strict}
	for _, raw := range []string{
		base + "/app.git",
		counting.URL + "/app.git",
		"http://localhost:" + u.Port() + "/app.git",
		"http://rebind.example.com:" + u.Port() + "/app.git",
		"http://[::ffff:127.0.0.1]:" + u.Port() + "/app.git",
		"http://169.254.169.254/latest.git",
		"ssh://git@10.0.0.1/app.git",
		"git@192.168.1.1:app.git",
	} {
		t.Run(raw, func(t *testing.T) {
			_, _, out, err := fetch(t, f, raw, "main")
			if !berth.IsKind(err, berth.Invalid) || !strings.Contains(berth.ErrorMessage(err), "--allow-private-egress") {
				t.Fatalf("fetch: %v, want a refusal naming --allow-private-egress", err)
			}
			if out != "" {
				t.Errorf("git ran: %q", out)
			}
			if _, err := f.LsRemote(context.Background(), raw, "main", berth.GitAuth{}); !berth.IsKind(err, berth.Invalid) {
				t.Errorf("ls-remote: %v, want refused", err)
			}
		})
	}
	if hits.Load() != 0 {
		t.Errorf("the server was reached %d times", hits.Load())
	}
}

// TestFetchPinsResolvedAddress: git connects to the address the policy
// checked, not to whatever the name resolves to later. The name used here
// resolves nowhere outside the policy's resolver, so the fetch can only
// succeed when git uses the pinned address (http.curloptResolve).
func TestFetchPinsResolvedAddress(t *testing.T) {
	h := newHistory(t)
	base := gittest.Serve(t, map[string]*gittest.Repo{"app": h.repo})
	u, _ := url.Parse(base)
	var asked atomic.Int32
	p := egress.Policy{AllowPrivate: true, Resolve: func(_ context.Context, host string) ([]netip.Addr, error) {
		asked.Add(1)
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}}
	raw := "http://git.berth-pinned.invalid:" + u.Port() + "/app.git"
	commit, _, _, err := fetch(t, &git.Fetcher{Egress: p}, raw, "main")
	if err != nil {
		t.Fatalf("fetch through the pinned address: %v", err)
	}
	if commit != h.main {
		t.Errorf("commit %s, want %s", commit, h.main)
	}
	if got, err := (&git.Fetcher{Egress: p}).LsRemote(context.Background(), raw, "feature", berth.GitAuth{}); err != nil || got != h.feature {
		t.Errorf("ls-remote: %s, %v", got, err)
	}
	if asked.Load() != 2 {
		t.Errorf("resolver asked %d times, want 2", asked.Load())
	}
}
