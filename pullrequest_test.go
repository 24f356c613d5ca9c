package berth

import "testing"

func TestPullRequestValidate(t *testing.T) {
	good := PullRequest{Provider: GitHub, Repo: "acme/web", Number: 7, Action: PullRequestOpened,
		BaseRef: "main", HeadRef: "feature/x", HeadSHA: "0123456789abcdef0123456789abcdef01234567",
		FetchRef: "refs/pull/7/head"}
	if err := good.Validate(); err != nil {
		t.Fatalf("good: %v", err)
	}
	for name, mut := range map[string]func(*PullRequest){
		"provider":  func(p *PullRequest) { p.Provider = "sourceforge" },
		"number":    func(p *PullRequest) { p.Number = 0 },
		"action":    func(p *PullRequest) { p.Action = "labeled" },
		"sha":       func(p *PullRequest) { p.HeadSHA = "HEAD" },
		"short sha": func(p *PullRequest) { p.HeadSHA = "0123456" },
		"head ref":  func(p *PullRequest) { p.HeadRef = "-x; touch /tmp/pwn" },
		"base ref":  func(p *PullRequest) { p.BaseRef = "a..b" },
		"fetch ref": func(p *PullRequest) { p.FetchRef = "--upload-pack=x" },
		"repo":      func(p *PullRequest) { p.Repo = "" },
	} {
		pr := good
		mut(&pr)
		if err := pr.Validate(); !IsKind(err, Invalid) {
			t.Errorf("%s: got %v, want Invalid", name, err)
		}
	}
	if got := PreviewHost(7, "example.com"); got != "pr-7.example.com" {
		t.Errorf("PreviewHost = %q", got)
	}
}
