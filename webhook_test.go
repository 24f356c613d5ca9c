package berth

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMatchBranch(t *testing.T) {
	for _, tc := range []struct {
		patterns []string
		branch   string
		want     bool
	}{
		{[]string{"main"}, "main", true},
		{[]string{"main"}, "main2", false},
		{[]string{"release/*"}, "release/1.2", true},
		{[]string{"release/*"}, "release/a/b", false},
		{[]string{"release/**"}, "release/a/b", true},
		{[]string{"v?"}, "v1", true},
		{[]string{"v?"}, "v10", false},
		{[]string{"feat.x"}, "featyx", false}, // '.' is literal
		{[]string{"main", "dev*"}, "develop", true},
		{nil, "main", false},
	} {
		if got := MatchBranch(tc.patterns, tc.branch); got != tc.want {
			t.Errorf("MatchBranch(%q, %q) = %v, want %v", tc.patterns, tc.branch, got, tc.want)
		}
	}
}

func TestMatchPaths(t *testing.T) {
	for _, tc := range []struct {
		patterns, changed []string
		want              bool
	}{
		{nil, []string{"README.md"}, true},
		{nil, nil, true},
		{[]string{"services/api"}, []string{"services/api/main.go"}, true},
		{[]string{"services/api/"}, []string{"services/api/main.go"}, true},
		{[]string{"services/api"}, []string{"services/api"}, true},
		{[]string{"services/api"}, []string{"services/apiary/x.go"}, false},
		{[]string{"services/api"}, []string{"services/web/x.go", "README.md"}, false},
		{[]string{"services/*/go.mod"}, []string{"services/web/go.mod"}, true},
		{[]string{"services/*/go.mod"}, []string{"services/web/sub/go.mod"}, false},
		{[]string{"services/*"}, []string{"services/web/deep/file.go"}, true}, // a directory matches
		{[]string{"**/*.go"}, []string{"a/b/c.go"}, true},
		{[]string{"*.md"}, []string{"docs/a.txt"}, false},
		{[]string{"api"}, nil, false},
	} {
		_, got := MatchPaths(tc.patterns, tc.changed)
		if got != tc.want {
			t.Errorf("MatchPaths(%q, %q) = %v, want %v", tc.patterns, tc.changed, got, tc.want)
		}
	}
}

func TestWebhookValidate(t *testing.T) {
	good := Webhook{Branches: []string{"main", "release/*"}, Paths: []string{"services/api/", "**/*.go", "go.mod"}}
	if err := good.Validate(); err != nil {
		t.Fatalf("good: %v", err)
	}
	bad := []Webhook{
		{Branches: []string{"-x"}}, {Branches: []string{"a..b"}}, {Branches: []string{"a b"}}, {Branches: []string{""}},
		{Branches: []string{"$(touch x)"}}, {Branches: []string{strings.Repeat("a", 300)}},
		{Paths: []string{"../etc"}}, {Paths: []string{"/abs"}}, {Paths: []string{"a/../b"}}, {Paths: []string{"a\nb"}},
		{Paths: []string{"."}}, {Paths: []string{""}},
		{Branches: make([]string, MaxWebhookPatterns+1)},
	}
	for _, w := range bad {
		if err := w.Validate(); !IsKind(err, Invalid) {
			t.Errorf("%+v: %v, want Invalid", w, err)
		}
	}
	for _, s := range []string{"short", strings.Repeat("a", 300), "has a space in it!!", "tab\tinside-the-secret"} {
		if ValidWebhookSecret(s) == nil {
			t.Errorf("secret %q accepted", s)
		}
	}
	if err := ValidWebhookSecret("0123456789abcdef"); err != nil {
		t.Error(err)
	}
}

func TestDeliveryClip(t *testing.T) {
	d := WebhookDelivery{DeliveryID: strings.Repeat("é", 200), Reason: "a\x00b\x1b[31m\n" + strings.Repeat("x", 1000), Event: "\xff\xfe"}
	d.Clip()
	if strings.ContainsAny(d.Reason, "\x1b\n") {
		t.Errorf("control characters kept: %q", d.Reason[:12])
	}
	if len(d.DeliveryID) > MaxDeliveryField || !utf8.ValidString(d.DeliveryID) {
		t.Errorf("delivery id %d bytes, valid %v", len(d.DeliveryID), utf8.ValidString(d.DeliveryID))
	}
	if len(d.Reason) > MaxDeliveryReason || strings.Contains(d.Reason, "\x00") || !utf8.ValidString(d.Event) {
		t.Errorf("reason %d bytes / event %q", len(d.Reason), d.Event)
	}
}

// TestPushTarget: what a webhook deployment deploys as pushes arrive, in
// and out of order.
func TestPushTarget(t *testing.T) {
	c := func(n int) string { return strings.Repeat(string(rune('0'+n)), 40) }
	const main, dev = "refs/heads/main", "refs/heads/dev"
	push := func(ref string, before, after int) PushStep {
		return PushStep{Ref: ref, Before: c(before), After: c(after)}
	}
	for _, tc := range []struct {
		name   string
		queued string
		p      PushStep
		older  bool
		want   string
		note   string
	}{
		{"new deployment", "", push(main, 1, 2), false, c(2), ""},
		{"new deployment of a push older than one received", "", push(main, 1, 2), true, main, "deploying the head of main"},
		{"new deployment of an old push naming no branch", "", PushStep{Before: c(1), After: c(2)}, true, c(2), ""},
		{"on top of the queued commit", c(2), push(main, 2, 3), false, c(3), "pushed on top of"},
		{"older than the queued commit, delivered last", c(3), push(main, 1, 2), true, c(3), "it keeps " + c(3)[:12]},
		{"the queued commit again", c(3), push(main, 2, 3), true, c(3), "already"},
		{"a gap: no signal", c(2), push(main, 4, 5), false, main, "cannot tell"},
		{"both signals: a force push back", c(3), push(main, 3, 1), true, main, "cannot tell"},
		{"a new branch", c(3), PushStep{Ref: dev, Before: strings.Repeat("0", 40), After: c(4)}, false, dev, "head of dev"},
		{"queued on the branch already", main, push(main, 4, 5), false, main, "it deploys the head of main"},
		{"queued on another branch", main, push(dev, 4, 5), true, dev, "it now deploys the head of dev"},
		{"no branch, no before: arrival order", c(2), PushStep{After: c(7)}, false, c(7), "it now deploys"},
		{"a branch that is not a valid ref", c(2), PushStep{Ref: "refs/heads/-x", Before: c(4), After: c(5)}, false, c(5), "it now deploys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, note := PushTarget(tc.queued, tc.p, tc.older)
			if ref != tc.want || !strings.Contains(note, tc.note) || (tc.note == "") != (note == "") {
				t.Errorf("PushTarget = %q, %q; want %q with %q", ref, note, tc.want, tc.note)
			}
		})
	}
}

// TestPushTargetAnyOrder sends a chain of pushes in every order of
// arrival: the deployment ends on the newest commit or on the branch,
// never on an older commit.
func TestPushTargetAnyOrder(t *testing.T) {
	const n = 5
	c := func(i int) string { return strings.Repeat(string(rune('a'+i)), 40) }
	var permute func(prefix, rest []int)
	permute = func(prefix, rest []int) {
		if len(rest) == 0 {
			queued := ""
			var befores []string
			for _, i := range prefix {
				p := PushStep{Ref: "refs/heads/main", Before: c(i), After: c(i + 1)}
				older := false
				for _, b := range befores {
					older = older || b == p.After
				}
				queued, _ = PushTarget(queued, p, older)
				befores = append(befores, p.Before)
			}
			if queued != c(n) && queued != "refs/heads/main" {
				t.Errorf("arrival order %v ends on %s", prefix, queued[:1])
			}
			return
		}
		for i := range rest {
			next := append(append([]int{}, rest[:i]...), rest[i+1:]...)
			permute(append(append([]int{}, prefix...), rest[i]), next)
		}
	}
	permute(nil, []int{0, 1, 2, 3, 4})
}
