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
