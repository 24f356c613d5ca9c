package berth_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

func validApp() berth.App {
	a := berth.App{Name: "hello", Source: berth.Source{Git: "https://git.example.com/hello.git"}}
	a.SetDefaults()
	return a
}

func TestAppValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*berth.App)
		bad    string // "" = valid; else a fragment of the error
	}{
		{"defaults", func(a *berth.App) {}, ""},
		{"name with shell", func(a *berth.App) { a.Name = "x;rm -rf /" }, "name"},
		{"name uppercase", func(a *berth.App) { a.Name = "Hello" }, "name"},
		{"name leading dash", func(a *berth.App) { a.Name = "-x" }, "name"},
		{"name double dash", func(a *berth.App) { a.Name = "a--b" }, "name"},
		{"name too long", func(a *berth.App) { a.Name = strings.Repeat("a", 41) }, "name"},
		{"ref option", func(a *berth.App) { a.Source.Ref = "--upload-pack=x" }, "git ref"},
		{"ref dotdot", func(a *berth.App) { a.Source.Ref = "a..b" }, "git ref"},
		{"ref subst", func(a *berth.App) { a.Source.Ref = "$(id)" }, "git ref"},
		{"git url newline", func(a *berth.App) { a.Source.Git = "https://x/y\nz" }, "git URL"},
		{"image shell", func(a *berth.App) { a.Source = berth.Source{Kind: berth.SourceImage, Image: "nginx;id"} }, "image"},
		{"image ok", func(a *berth.App) {
			a.Source = berth.Source{Kind: berth.SourceImage, Image: "registry.example.com:5000/t/app:1.2"}
		}, ""},
		{"push ok", func(a *berth.App) { a.Source = berth.Source{Kind: berth.SourcePush, Ref: "release/v2"} }, ""},
		{"push default branch", func(a *berth.App) { a.Source = berth.Source{Kind: berth.SourcePush}; a.SetDefaults() }, ""},
		{"push branch option", func(a *berth.App) { a.Source = berth.Source{Kind: berth.SourcePush, Ref: "-x"} }, "branch"},
		{"push branch is a commit", func(a *berth.App) {
			a.Source = berth.Source{Kind: berth.SourcePush, Ref: strings.Repeat("ab", 20)}
		}, "branch"},
		{"push branch HEAD", func(a *berth.App) { a.Source = berth.Source{Kind: berth.SourcePush, Ref: "HEAD"} }, "branch"},
		{"push branch refs/", func(a *berth.App) { a.Source = berth.Source{Kind: berth.SourcePush, Ref: "refs/heads/main"} }, "branch"},
		{"push branch dot part", func(a *berth.App) { a.Source = berth.Source{Kind: berth.SourcePush, Ref: "a/.hidden"} }, "branch"},
		{"push branch missing", func(a *berth.App) { a.Source = berth.Source{Kind: berth.SourcePush} }, "branch"},
		{"kind unknown", func(a *berth.App) { a.Source.Kind = "ftp" }, "git, image, upload or push"},
		{"dockerfile escape", func(a *berth.App) { a.Build.Dockerfile = "../../etc/passwd" }, "dockerfile"},
		{"context absolute", func(a *berth.App) { a.Build.Context = "/etc" }, "context"},
		{"build arg key", func(a *berth.App) { a.Build.Args = map[string]string{"A=B": "x"} }, "build arg"},
		{"target", func(a *berth.App) { a.Build.Target = "x y" }, "target"},
		{"port", func(a *berth.App) { a.Port = 70000 }, "port"},
		{"replicas", func(a *berth.App) { a.Replicas = 100 }, "replicas"},
		{"memory", func(a *berth.App) { a.Resources.MemoryMB = 1 }, "memory"},
		{"health path", func(a *berth.App) { a.Health.Path = "/x y" }, "health check path"},
		{"health interval", func(a *berth.App) { a.Health.Interval = time.Nanosecond }, "interval"},
		{"volume name", func(a *berth.App) { a.Volumes = []berth.Volume{{Name: "../x", Path: "/data"}} }, "volume name"},
		{"volume path", func(a *berth.App) { a.Volumes = []berth.Volume{{Name: "data", Path: "/data:/host"}} }, "volume path"},
		{"volume twice", func(a *berth.App) {
			a.Volumes = []berth.Volume{{Name: "data", Path: "/a"}, {Name: "data", Path: "/b"}}
		}, "twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := validApp()
			tc.mutate(&a)
			err := a.Validate()
			switch {
			case tc.bad == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.bad != "" && err == nil:
				t.Fatal("accepted")
			case tc.bad != "" && !strings.Contains(err.Error(), tc.bad):
				t.Fatalf("error %q lacks %q", err, tc.bad)
			case err != nil && !berth.IsKind(err, berth.Invalid):
				t.Fatalf("kind %s, want invalid", berth.ErrorKind(err))
			}
		})
	}
}

func TestValidateNeverShowsGitPassword(t *testing.T) {
	a := validApp()
	a.Source.Git = "https://user:s3cret@git.example.com/x y.git"
	err := a.Validate()
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error %v shows the password or accepts the URL", err)
	}
}

func TestStateMachine(t *testing.T) {
	for _, tc := range []struct {
		from, to berth.Status
		ok       bool
	}{
		{berth.StatusQueued, berth.StatusFetching, true},
		{berth.StatusQueued, berth.StatusStarting, true},
		{berth.StatusSwitching, berth.StatusLive, true},
		{berth.StatusSwitching, berth.StatusCancelled, false},
		{berth.StatusLive, berth.StatusSuperseded, true},
		{berth.StatusLive, berth.StatusFailed, false},
		{berth.StatusFailed, berth.StatusQueued, false},
		{berth.StatusBuilding, berth.StatusLive, false},
	} {
		if got := berth.CanMove(tc.from, tc.to); got != tc.ok {
			t.Errorf("CanMove(%s, %s) = %v", tc.from, tc.to, got)
		}
	}
	for _, s := range berth.Statuses {
		if !s.Valid() {
			t.Errorf("%s is not valid", s)
		}
	}
}

func TestValidHost(t *testing.T) {
	for h, ok := range map[string]bool{
		"hello.localhost": true, "a.b.example.com": true, "*.example.com": true, "xn--bcher-kva.example": true,
		"localhost": false, "Hello.com": false, "a b.com": false, "-a.com": false, "a..com": false, "a.com.": false,
		"a.com/x": false, "a.com:80": false, strings.Repeat("a", 64) + ".com": false,
	} {
		if err := berth.ValidHost(h); (err == nil) != ok {
			t.Errorf("ValidHost(%q) = %v", h, err)
		}
	}
}

func TestScopes(t *testing.T) {
	if !berth.Allows([]berth.Scope{berth.ScopeWrite}, berth.ScopeDeploy) || berth.Allows([]berth.Scope{berth.ScopeWrite}, berth.ScopeReadSecrets) ||
		!berth.Allows([]berth.Scope{berth.ScopeAdmin}, berth.ScopeReadSecrets) || berth.Allows([]berth.Scope{berth.ScopeRead}, berth.ScopeDeploy) {
		t.Error("scope implications are wrong")
	}
}

func TestHealthCheckJSON(t *testing.T) {
	h := berth.HealthCheck{Path: "/up", Interval: 250 * time.Millisecond, Timeout: 2 * time.Second, Threshold: 3, Deadline: 90 * time.Second}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"path":"/up","interval":"250ms","timeout":"2s","threshold":3,"deadline":"1m30s"}`; string(b) != want {
		t.Errorf("marshal = %s, want %s", b, want)
	}
	var back berth.HealthCheck
	if err := json.Unmarshal(b, &back); err != nil || back != h {
		t.Errorf("round trip = %+v, %v; want %+v", back, err, h)
	}
	// Inside an app, a release config and a probe, the same shape.
	a := validApp()
	b, err = json.Marshal(a)
	if err != nil || !strings.Contains(string(b), `"interval":"500ms"`) || !strings.Contains(string(b), `"deadline":"1m0s"`) {
		t.Errorf("app JSON = %s, %v", b, err)
	}
	var a2 berth.App
	if err := json.Unmarshal(b, &a2); err != nil || a2.Health != a.Health {
		t.Errorf("app round trip health = %+v, %v", a2.Health, err)
	}
}

func TestHealthCheckUnmarshal(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want berth.HealthCheck
		bad  string // "" = accepted; else a fragment of the error
	}{
		{"all fields", `{"path":"/up","interval":"1s","timeout":"500ms","threshold":2,"deadline":"2m"}`,
			berth.HealthCheck{Path: "/up", Interval: time.Second, Timeout: 500 * time.Millisecond, Threshold: 2, Deadline: 2 * time.Minute}, ""},
		{"missing fields stay zero", `{"interval":"1s"}`, berth.HealthCheck{Interval: time.Second}, ""},
		{"empty object", `{}`, berth.HealthCheck{}, ""},
		{"null", `null`, berth.HealthCheck{}, ""},
		{"null duration", `{"timeout":null}`, berth.HealthCheck{}, ""},
		{"zero duration", `{"deadline":"0s"}`, berth.HealthCheck{}, ""},
		{"number refused", `{"interval":500000000}`, berth.HealthCheck{}, `interval: write durations as strings`},
		{"negative refused", `{"timeout":"-1s"}`, berth.HealthCheck{}, `timeout "-1s": use a positive`},
		{"not a duration", `{"deadline":"soon"}`, berth.HealthCheck{}, `deadline "soon"`},
		{"empty string", `{"interval":""}`, berth.HealthCheck{}, `interval ""`},
		{"bool duration", `{"interval":true}`, berth.HealthCheck{}, "interval: write durations as strings"},
		{"unknown field", `{"pth":"/"}`, berth.HealthCheck{}, `unknown field "pth"`},
		{"path not a string", `{"path":1}`, berth.HealthCheck{}, "health check path: expected string"},
		{"threshold not a number", `{"threshold":"3"}`, berth.HealthCheck{}, "threshold: expected int"},
		{"not an object", `[1]`, berth.HealthCheck{}, "expected an object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h berth.HealthCheck
			err := json.Unmarshal([]byte(tc.in), &h)
			switch {
			case tc.bad == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.bad == "" && h != tc.want:
				t.Errorf("got %+v, want %+v", h, tc.want)
			case tc.bad != "" && err == nil:
				t.Fatalf("accepted as %+v, want an error containing %q", h, tc.bad)
			case tc.bad != "" && (!strings.Contains(err.Error(), tc.bad) || !berth.IsKind(err, berth.Invalid)):
				t.Errorf("error %q (kind %s), want kind invalid containing %q", err, berth.ErrorKind(err), tc.bad)
			}
		})
	}
	// Absent fields keep what was there, like encoding/json; SetDefaults
	// fills what is still zero.
	h := berth.HealthCheck{Path: "/x", Threshold: 5}
	if err := json.Unmarshal([]byte(`{"timeout":"3s"}`), &h); err != nil {
		t.Fatal(err)
	}
	if h != (berth.HealthCheck{Path: "/x", Threshold: 5, Timeout: 3 * time.Second}) {
		t.Errorf("decoded over an existing value: %+v", h)
	}
	a := berth.App{Name: "x"}
	if err := json.Unmarshal([]byte(`{"name":"x","health":{"path":"/up"}}`), &a); err != nil {
		t.Fatal(err)
	}
	a.SetDefaults()
	want := berth.DefaultHealthCheck
	want.Path = "/up"
	if a.Health != want {
		t.Errorf("health after SetDefaults = %+v, want %+v", a.Health, want)
	}
}
