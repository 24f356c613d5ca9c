package berth

import (
	"strings"
	"testing"
	"time"
)

func TestPreviewAppName(t *testing.T) {
	for _, c := range []struct {
		parent string
		n      int
		want   string
	}{
		{"hello", 7, "hello-pr-7"},
		{strings.Repeat("a", 40), 2147483647, strings.Repeat("a", 26) + "-pr-2147483647"},
		// Shortening must not leave a dash before the suffix ("--").
		{strings.Repeat("a", 30) + "-bcdefghi", 12345, strings.Repeat("a", 30) + "-pr-12345"},
	} {
		got := PreviewAppName(c.parent, c.n)
		if got != c.want {
			t.Errorf("PreviewAppName(%q, %d) = %q, want %q", c.parent, c.n, got, c.want)
		}
		if err := ValidName(got); err != nil {
			t.Errorf("PreviewAppName(%q, %d) = %q: %v", c.parent, c.n, got, err)
		}
	}
}

func TestPreviewTrusted(t *testing.T) {
	a, b := strings.Repeat("a", 40), strings.Repeat("b", 40)
	for _, c := range []struct {
		p      Preview
		commit string
		want   bool
	}{
		{Preview{Fork: false}, a, true},
		{Preview{Fork: true}, a, false},
		{Preview{Fork: true, ApprovedSHA: a}, a, true},
		// Approval is per commit: a later push is untrusted again.
		{Preview{Fork: true, ApprovedSHA: a}, b, false},
		{Preview{Fork: true, ApprovedSHA: ""}, "", false},
	} {
		if got := c.p.Trusted(c.commit); got != c.want {
			t.Errorf("%+v.Trusted(%s) = %v, want %v", c.p, c.commit, got, c.want)
		}
	}
}

func TestPreviewSettingsValidate(t *testing.T) {
	good := DefaultPreviewSettings("team_x", "app_x")
	good.Env = map[string]string{"DATABASE_URL": "postgres://preview"}
	good.StatusAPI = "https://gitea.example.com/api/v1"
	if err := good.Validate(); err != nil {
		t.Fatalf("good: %v", err)
	}
	for name, mut := range map[string]func(*PreviewSettings){
		"max 0":        func(s *PreviewSettings) { s.MaxPreviews = 0 },
		"max too big":  func(s *PreviewSettings) { s.MaxPreviews = MaxMaxPreviews + 1 },
		"ttl short":    func(s *PreviewSettings) { s.TTL = time.Minute },
		"ttl long":     func(s *PreviewSettings) { s.TTL = 365 * 24 * time.Hour },
		"env key":      func(s *PreviewSettings) { s.Env = map[string]string{"1X": "y"} },
		"env reserved": func(s *PreviewSettings) { s.Env = map[string]string{"BERTH_APP": "y"} },
		"api scheme":   func(s *PreviewSettings) { s.StatusAPI = "file:///etc/passwd" },
		"api userinfo": func(s *PreviewSettings) { s.StatusAPI = "https://u:secret@gitea.example.com" },
		"api query":    func(s *PreviewSettings) { s.StatusAPI = "https://gitea.example.com/api?x=1" },
		"api relative": func(s *PreviewSettings) { s.StatusAPI = "/api/v1" },
		"token space":  func(s *PreviewSettings) { s.StatusToken = "a b" },
	} {
		s := *good
		mut(&s)
		err := s.Validate()
		if !IsKind(err, Invalid) {
			t.Errorf("%s: got %v, want Invalid", name, err)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error quotes a credential: %v", name, err)
		}
	}
}

func TestCommitStatusValidate(t *testing.T) {
	good := CommitStatus{Provider: GitLab, Repo: "group/sub/name", SHA: strings.Repeat("c", 40), State: CommitPending}
	if err := good.Validate(); err != nil {
		t.Fatalf("good: %v", err)
	}
	for name, mut := range map[string]func(*CommitStatus){
		"provider":  func(s *CommitStatus) { s.Provider = "svn" },
		"sha":       func(s *CommitStatus) { s.SHA = "HEAD" },
		"state":     func(s *CommitStatus) { s.State = "green" },
		"one part":  func(s *CommitStatus) { s.Repo = "name" },
		"dot dot":   func(s *CommitStatus) { s.Repo = "owner/../../admin" },
		"query":     func(s *CommitStatus) { s.Repo = "owner/name?x=1" },
		"encoded":   func(s *CommitStatus) { s.Repo = "owner/%2e%2e" },
		"empty seg": func(s *CommitStatus) { s.Repo = "owner//name" },
	} {
		s := good
		mut(&s)
		if err := s.Validate(); !IsKind(err, Invalid) {
			t.Errorf("%s: got %v, want Invalid", name, err)
		}
	}
}
