package egress_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/egress"
)

func TestPublic(t *testing.T) {
	for _, tc := range []struct {
		ip   string
		want bool
	}{
		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"140.82.112.3", true},
		{"2606:4700::1111", true},
		{"::ffff:8.8.8.8", true},
		{"64:ff9b::808:808", true}, // NAT64 of 8.8.8.8
		{"127.0.0.1", false},
		{"127.255.255.254", false},
		{"10.0.0.1", false},
		{"172.16.0.1", false},
		{"172.31.255.255", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false},
		{"169.254.0.1", false},
		{"100.64.0.1", false},
		{"100.127.255.255", false},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"224.0.0.1", false},
		{"239.255.255.250", false},
		{"255.255.255.255", false},
		{"198.18.0.1", false},
		{"::1", false},
		{"::", false},
		{"fc00::1", false},
		{"fd12:3456::1", false},
		{"fe80::1", false},
		{"fe80::1%eth0", false},
		{"ff02::1", false},
		{"::ffff:127.0.0.1", false},
		{"::ffff:10.1.2.3", false},
		{"::ffff:169.254.169.254", false},
		{"64:ff9b::7f00:1", false},   // NAT64 of 127.0.0.1
		{"2002:7f00:1::1", false},    // 6to4 of 127.0.0.1
		{"2002:a9fe:a9fe::1", false}, // 6to4 of 169.254.169.254
		{"::127.0.0.1", false},       // IPv4-compatible
		{"2001:db8::1", false},
	} {
		t.Run(tc.ip, func(t *testing.T) {
			if got := egress.Public(netip.MustParseAddr(tc.ip)); got != tc.want {
				t.Errorf("Public(%s) = %v, want %v", tc.ip, got, tc.want)
			}
		})
	}
}

// fakeDNS resolves the names of a map.
func fakeDNS(m map[string]string) func(context.Context, string) ([]netip.Addr, error) {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		v, ok := m[host]
		if !ok {
			return nil, errors.New("no such host")
		}
		var out []netip.Addr
		for _, s := range strings.Split(v, ",") {
			out = append(out, netip.MustParseAddr(s))
		}
		return out, nil
	}
}

func TestCheck(t *testing.T) {
	dns := fakeDNS(map[string]string{
		"git.example.com":   "140.82.112.3",
		"evil.example.com":  "127.0.0.1",
		"mixed.example.com": "140.82.112.3,10.0.0.7",
		"meta.example.com":  "169.254.169.254",
		"v6.example.com":    "::ffff:127.0.0.1",
	})
	strict := egress.Policy{Resolve: dns}
	open := egress.Policy{Resolve: dns, AllowPrivate: true}
	for _, tc := range []struct {
		url        string
		strict     berth.Kind // "" = allowed
		allowedAll bool       // allowed with AllowPrivate
	}{
		{"https://git.example.com/a/b.git", "", true},
		{"ssh://git@git.example.com/a/b.git", "", true},
		{"git@git.example.com:a/b.git", "", true},
		{"https://8.8.8.8/a.git", "", true},
		{"https://[2606:4700::1111]/a.git", "", true},
		{"http://127.0.0.1:8080/a.git", berth.Invalid, true},
		{"http://127.0.0.1@evil.example.com/a.git", berth.Invalid, true},
		{"http://evil.example.com/a.git", berth.Invalid, true},
		{"http://mixed.example.com/a.git", berth.Invalid, true},
		{"http://meta.example.com/latest/meta-data", berth.Invalid, true},
		{"http://v6.example.com/a.git", berth.Invalid, true},
		{"http://169.254.169.254/latest/meta-data", berth.Invalid, true},
		{"http://[::1]/a.git", berth.Invalid, true},
		{"http://[::ffff:127.0.0.1]/a.git", berth.Invalid, true},
		{"http://[fe80::1%25eth0]/a.git", berth.Invalid, true},
		{"http://0.0.0.0/a.git", berth.Invalid, true},
		{"http://localhost/a.git", berth.Invalid, false}, // not in the fake DNS
		{"http://app.localhost/a.git", berth.Invalid, false},
		{"git@10.1.2.3:a/b.git", berth.Invalid, true},
		{"git@[::1]:a/b.git", berth.Invalid, true},
		{"http://2130706433/a.git", berth.Invalid, false},
		{"http://0x7f000001/a.git", berth.Invalid, false},
		{"http://127.1/a.git", berth.Invalid, false},
		{"http://0177.0.0.1/a.git", berth.Invalid, false},
		{"http://nowhere.example.com/a.git", berth.Unavailable, false},
		{"file:///etc/passwd", berth.Invalid, false},
		{"ext::sh -c touch% /tmp/x", berth.Invalid, false},
		{"/srv/git/repo", berth.Invalid, false},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := strict.Check(context.Background(), tc.url)
			if got := kindOf(err); got != tc.strict {
				t.Errorf("strict: kind %q (%v), want %q", got, err, tc.strict)
			}
			_, err = open.Check(context.Background(), tc.url)
			if (err == nil) != tc.allowedAll {
				t.Errorf("with private egress allowed: %v, want allowed=%v", err, tc.allowedAll)
			}
			if err != nil && strings.Contains(berth.ErrorMessage(err), "10.255.") {
				t.Errorf("message names the resolver: %v", err)
			}
		})
	}
}

func kindOf(err error) berth.Kind {
	if err == nil {
		return ""
	}
	return berth.ErrorKind(err)
}

// TestClientRefusesRebinding serves HTTP on loopback and checks that the
// strict client refuses to connect even when the name resolved to a public
// address when it was checked: the check at connect time decides.
func TestClientRefusesRebinding(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "secret")
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	strict := egress.Policy{}
	c := strict.Client(5 * time.Second)
	for _, u := range []string{srv.URL, "http://localhost:" + port, fmt.Sprintf("http://[::ffff:127.0.0.1]:%s", port)} {
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
			t.Errorf("GET %s: connected, want refused", u)
			continue
		}
		if !strings.Contains(err.Error(), "not a public address") {
			t.Errorf("GET %s: %v, want a refusal", u, err)
		}
	}
	open := egress.Policy{AllowPrivate: true}
	resp, err := open.Client(5 * time.Second).Get(srv.URL)
	if err != nil {
		t.Fatalf("with private egress allowed: %v", err)
	}
	resp.Body.Close()
	if hits.Load() != 1 {
		t.Errorf("server hit %d times, want 1 (only the allowed client)", hits.Load())
	}
	// A dial from the strict dialer never reaches loopback.
	conn, err := strict.Dialer().Dial("tcp", srv.Listener.Addr().String())
	if err == nil {
		conn.Close()
		t.Error("strict dialer connected to loopback")
	}
}

func TestControl(t *testing.T) {
	p := egress.Policy{}
	for addr, ok := range map[string]bool{
		"8.8.8.8:443":          true,
		"[2606:4700::1]:443":   true,
		"127.0.0.1:80":         false,
		"[::1]:80":             false,
		"10.0.0.1:22":          false,
		"169.254.169.254:80":   false,
		"[::ffff:10.0.0.1]:80": false,
		"not-an-address":       false,
	} {
		if err := p.Control("tcp", addr, nil); (err == nil) != ok {
			t.Errorf("Control(%s) = %v, want allowed=%v", addr, err, ok)
		}
	}
	if err := (egress.Policy{AllowPrivate: true}).Control("tcp", "127.0.0.1:80", nil); err != nil {
		t.Errorf("AllowPrivate: %v", err)
	}
}
