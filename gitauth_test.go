package berth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestGitAuthNeverPrints: however a GitAuth is printed, logged or encoded,
// no secret shows.
func TestGitAuthNeverPrints(t *testing.T) {
	a := GitAuth{
		DeployKey: []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nU0VDUkVUS0VZTUFURVJJQUw=\n-----END OPENSSH PRIVATE KEY-----\n"),
		Username:  "oauth2", Token: "TOPSECRETTOKEN",
		HostKeys: []HostKey{{Host: "h", Key: "ssh-ed25519 AAAA"}},
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "auth", a)
	j, _ := json.Marshal(FetchRequest{URL: "u", Auth: a})
	outs := []string{logged.String(), string(j)}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outs = append(outs, fmt.Sprintf(verb, a), fmt.Sprintf(verb, &a), fmt.Sprintf(verb, FetchRequest{Auth: a}), fmt.Sprintf(verb, []GitAuth{a}))
	}
	for _, out := range outs {
		for _, s := range []string{"TOPSECRETTOKEN", "U0VDUkVUS0VZTUFURVJJQUw", "PRIVATE KEY", "oauth2", BasicAuth("oauth2", "TOPSECRETTOKEN")} {
			if strings.Contains(out, s) {
				t.Errorf("%q shows %q", out, s)
			}
		}
	}
	if got := a.String(); got != "git auth: deploy key, access token, 1 host key(s)" {
		t.Errorf("String() = %q", got)
	}
	if got := (GitAuth{}).String(); got != "git auth: none" {
		t.Errorf("zero String() = %q", got)
	}
	secrets := a.Secrets()
	for _, want := range []string{"TOPSECRETTOKEN", BasicAuth("oauth2", "TOPSECRETTOKEN"), "U0VDUkVUS0VZTUFURVJJQUw="} {
		if !strings.Contains(strings.Join(secrets, "\n"), want) {
			t.Errorf("Secrets() %q lacks %q", secrets, want)
		}
	}
	if BasicAuth("", "t") != BasicAuth(DefaultGitUsername, "t") {
		t.Error("BasicAuth without a user name does not use the default")
	}
}

func TestValidGitToken(t *testing.T) {
	for _, ok := range [][2]string{{"", "ghp_abc"}, {"x-access-token", "t"}, {"oauth2", "glpat-x"}, {"me@example.com", "tok"}, {"", strings.Repeat("a", MaxGitTokenLen)}} {
		if err := ValidGitToken(ok[0], ok[1]); err != nil {
			t.Errorf("%q/%q: %v", ok[0], ok[1], err)
		}
	}
	for _, bad := range [][2]string{{"", ""}, {"a:b", "t"}, {"-x", "t"}, {"a b", "t"}, {"", "a b"}, {"", "a\nb"}, {"", "a\x00"}, {"", "a\x7f"},
		{"", strings.Repeat("a", MaxGitTokenLen+1)}, {strings.Repeat("u", 129), "t"}, {"", "\xff"}} {
		if err := ValidGitToken(bad[0], bad[1]); err == nil {
			t.Errorf("%q/%q accepted", bad[0], clip(bad[1]))
		} else if bad[1] != "" && strings.Contains(err.Error(), bad[1]) && len(bad[1]) > 2 {
			t.Errorf("the error shows the token: %v", err)
		}
	}
}

func TestKeyFingerprint(t *testing.T) {
	// ssh-keygen -lf on this key prints this fingerprint.
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl comment"
	const want = "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU"
	if got := KeyFingerprint(key); got != want {
		t.Errorf("KeyFingerprint = %q, want %q", got, want)
	}
	for _, bad := range []string{"", "ssh-ed25519", "ssh-ed25519 !!!"} {
		if got := KeyFingerprint(bad); got != "" {
			t.Errorf("KeyFingerprint(%q) = %q", bad, got)
		}
	}
}
