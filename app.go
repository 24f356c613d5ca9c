package berth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"
)

// App is something a team deploys: a source, how to build it, how to run it.
// Its current settings apply to the next deployment; a running release keeps
// the snapshot it was deployed with (see Release).
type App struct {
	ID     string `json:"id"`
	TeamID string `json:"team_id"`
	// ProjectID is the project the app belongs to; an app created without
	// one goes to its team's default project (see Project).
	ProjectID string      `json:"project,omitempty"`
	Name      string      `json:"name"`
	Source    Source      `json:"source"`
	Build     BuildConfig `json:"build"`
	Port      int         `json:"port"` // the port the app listens on inside its container
	Replicas  int         `json:"replicas"`
	Resources Resources   `json:"resources"`
	Health    HealthCheck `json:"health"`
	Volumes   []Volume    `json:"volumes,omitempty"`
	CreatedAt time.Time   `json:"created_at"`
	UpdatedAt time.Time   `json:"updated_at"`
}

// SourceKind says where an app's code comes from.
type SourceKind string

// The source kinds.
const (
	SourceGit    SourceKind = "git"    // a Git repository at a branch, tag or commit
	SourceImage  SourceKind = "image"  // a prebuilt image reference; nothing is built
	SourceUpload SourceKind = "upload" // a build context uploaded with each deploy
	// SourcePush is code pushed with git to berth's own hosted remote
	// (http(s)://<server>/git/<app>.git): a push to the app's branch
	// (Source.Ref) deploys it.
	SourcePush SourceKind = "push"
)

// Source is where an app's code comes from.
type Source struct {
	Kind  SourceKind `json:"kind"`
	Git   string     `json:"git,omitempty"`   // repository URL (or local path where allowed)
	Ref   string     `json:"ref,omitempty"`   // branch, tag or commit; default "main" (push: the branch that deploys)
	Image string     `json:"image,omitempty"` // for SourceImage
}

// BuildConfig says how to build an image from the source.
type BuildConfig struct {
	Dockerfile string            `json:"dockerfile,omitempty"` // relative to Context; default "Dockerfile"
	Context    string            `json:"context,omitempty"`    // sub-directory of the source; default "."
	Args       map[string]string `json:"args,omitempty"`
	Target     string            `json:"target,omitempty"` // multi-stage target
}

// Resources limits what each container of an app may use. Zero means no limit.
type Resources struct {
	MemoryMB int64   `json:"memory_mb,omitempty"`
	CPUs     float64 `json:"cpus,omitempty"`
}

// HealthCheck is how the proxy decides that a new release may take traffic.
// In JSON its durations are Go duration strings such as "500ms" or "1m30s"
// (see MarshalJSON), so that documents are written by people, not in
// nanoseconds.
type HealthCheck struct {
	Path      string        `json:"path"`      // HTTP path probed with GET; 2xx/3xx is healthy
	Interval  time.Duration `json:"interval"`  // between probes
	Timeout   time.Duration `json:"timeout"`   // per probe
	Threshold int           `json:"threshold"` // consecutive successes needed
	Deadline  time.Duration `json:"deadline"`  // overall; past it the release fails
}

// healthJSON is the JSON shape of a HealthCheck.
type healthJSON struct {
	Path      string `json:"path"`
	Interval  string `json:"interval"`
	Timeout   string `json:"timeout"`
	Threshold int    `json:"threshold"`
	Deadline  string `json:"deadline"`
}

// MarshalJSON writes the durations as Go duration strings.
func (h HealthCheck) MarshalJSON() ([]byte, error) {
	return json.Marshal(healthJSON{Path: h.Path, Interval: h.Interval.String(), Timeout: h.Timeout.String(),
		Threshold: h.Threshold, Deadline: h.Deadline.String()})
}

// UnmarshalJSON reads durations written as Go duration strings. A number
// (which would be nanoseconds), a negative duration and an unknown field are
// refused with an Invalid error; fields that are absent keep their value,
// so a new check's missing fields stay zero for WithDefaults to fill.
func (h *HealthCheck) UnmarshalJSON(b []byte) error {
	const op = "decode health check"
	var in struct {
		Path      string          `json:"path"`
		Interval  json.RawMessage `json:"interval"`
		Timeout   json.RawMessage `json:"timeout"`
		Threshold int             `json:"threshold"`
		Deadline  json.RawMessage `json:"deadline"`
	}
	in.Path, in.Threshold = h.Path, h.Threshold
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return E(op, Invalid, "health check %s: expected %s", typeErr.Field, typeErr.Type)
		case errors.As(err, &typeErr):
			return E(op, Invalid, "health check: expected an object")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return E(op, Invalid, "health check: %s", strings.TrimPrefix(err.Error(), "json: "))
		}
		return E(op, Invalid, "health check is not valid JSON")
	}
	out := HealthCheck{Path: in.Path, Threshold: in.Threshold, Interval: h.Interval, Timeout: h.Timeout, Deadline: h.Deadline}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *time.Duration
	}{{"interval", in.Interval, &out.Interval}, {"timeout", in.Timeout, &out.Timeout}, {"deadline", in.Deadline, &out.Deadline}} {
		if len(f.raw) == 0 || string(f.raw) == "null" {
			continue
		}
		var s string
		if err := json.Unmarshal(f.raw, &s); err != nil {
			return E(op, Invalid, "health check %s: write durations as strings such as \"500ms\" or \"1m\", not %s", f.name, clip(string(f.raw)))
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return E(op, Invalid, "health check %s %q: use a positive Go duration such as \"500ms\" or \"1m\"", f.name, clip(s))
		}
		*f.dst = d
	}
	*h = out
	return nil
}

// Volume is a named volume mounted into every container of an app. It
// survives redeploys.
type Volume struct {
	Name string `json:"name"`
	Path string `json:"path"` // absolute path in the container
}

// DefaultHealthCheck is used for the fields an app leaves zero.
var DefaultHealthCheck = HealthCheck{
	Path:      "/",
	Interval:  500 * time.Millisecond,
	Timeout:   2 * time.Second,
	Threshold: 1,
	Deadline:  60 * time.Second,
}

// WithDefaults returns h with every zero field set from DefaultHealthCheck.
func (h HealthCheck) WithDefaults() HealthCheck {
	d := DefaultHealthCheck
	if h.Path != "" {
		d.Path = h.Path
	}
	if h.Interval > 0 {
		d.Interval = h.Interval
	}
	if h.Timeout > 0 {
		d.Timeout = h.Timeout
	}
	if h.Threshold > 0 {
		d.Threshold = h.Threshold
	}
	if h.Deadline > 0 {
		d.Deadline = h.Deadline
	}
	return d
}

// SetDefaults fills the zero fields of a new app.
func (a *App) SetDefaults() {
	if a.Source.Kind == "" {
		switch {
		case a.Source.Image != "":
			a.Source.Kind = SourceImage
		case a.Source.Git != "":
			a.Source.Kind = SourceGit
		default:
			a.Source.Kind = SourceUpload
		}
	}
	if (a.Source.Kind == SourceGit || a.Source.Kind == SourcePush) && a.Source.Ref == "" {
		a.Source.Ref = "main"
	}
	if a.Port == 0 {
		a.Port = 8080
	}
	if a.Replicas == 0 {
		a.Replicas = 1
	}
	a.Health = a.Health.WithDefaults()
}

// Limits on app settings.
const (
	MaxReplicas = 32
	MaxVolumes  = 16
	MaxBuildArg = 64
)

var (
	nameRE      = regexp.MustCompile(`^[a-z][a-z0-9-]{0,38}[a-z0-9]$|^[a-z]$`)
	volNameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	buildArgRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	targetRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	safePathRE  = regexp.MustCompile(`^[A-Za-z0-9_./@+-]*$`)
	httpPathRE  = regexp.MustCompile(`^/[A-Za-z0-9_./~%?&=+:@-]*$`)
	imageRefRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9._/:@-]{0,254}$`)
	gitRefRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$`)
	doubleDotRE = regexp.MustCompile(`\.\.`)
	hexRE       = regexp.MustCompile(`^[0-9a-f]{40}$|^[0-9a-f]{64}$`)
)

// ValidName checks an app (or project) name: lowercase letters, digits and
// dashes, starting with a letter, at most 40 characters. Names reach Docker
// labels, container names and hostnames, so the rule is strict.
func ValidName(s string) error {
	if !nameRE.MatchString(s) || strings.Contains(s, "--") {
		return fmt.Errorf("name %q: use 1-40 lowercase letters, digits and single dashes, starting with a letter and not ending with a dash", clip(s))
	}
	return nil
}

// ValidGitRef checks a branch, tag or commit name. It never starts with a
// dash, so it cannot be taken for an option.
func ValidGitRef(s string) error {
	if !gitRefRE.MatchString(s) || doubleDotRE.MatchString(s) || strings.HasSuffix(s, ".lock") ||
		strings.HasSuffix(s, "/") || strings.Contains(s, "//") {
		return fmt.Errorf("git ref %q: use letters, digits, '.', '_', '-' and '/', starting with a letter or digit", clip(s))
	}
	return nil
}

// ValidBranch checks the name of a branch (without "refs/heads/"): a
// ValidGitRef that is also a name git accepts for a branch and cannot be
// taken for a commit ID or HEAD.
func ValidBranch(s string) error {
	bad := fmt.Errorf("branch %q: use letters, digits, '.', '_', '-' and '/', starting with a letter or digit", clip(s))
	if ValidGitRef(s) != nil || s == "HEAD" || strings.HasPrefix(s, "refs/") || hexRE.MatchString(s) {
		return bad
	}
	for _, part := range strings.Split(s, "/") {
		if strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".") {
			return bad
		}
	}
	return nil
}

// ValidImageRef checks an image reference such as "nginx:1.27" or
// "registry.example.com/team/app@sha256:…".
func ValidImageRef(s string) error {
	if !imageRefRE.MatchString(s) || doubleDotRE.MatchString(s) || strings.Contains(s, "//") {
		return fmt.Errorf("image %q: not a valid image reference", clip(s))
	}
	return nil
}

// ValidRelPath checks a path inside a source tree (Dockerfile, context): it is
// relative, has no "..", and uses a conservative character set.
func ValidRelPath(s string) error {
	if s == "" {
		return nil
	}
	clean := path.Clean(s)
	if !safePathRE.MatchString(s) || path.IsAbs(s) || clean == ".." || strings.HasPrefix(clean, "../") || strings.HasPrefix(s, "-") {
		return fmt.Errorf("path %q: must be relative to the source, without '..'", clip(s))
	}
	return nil
}

// Validate checks every field of the app. It does not check the Git URL's
// transport, which depends on server settings (see package git).
func (a *App) Validate() error {
	const op = "validate app"
	if err := ValidName(a.Name); err != nil {
		return &Error{Op: op, Kind: Invalid, Msg: err.Error()}
	}
	bad := func(format string, args ...any) error { return E(op, Invalid, format, args...) }
	switch a.Source.Kind {
	case SourceGit:
		if a.Source.Git == "" {
			return bad("a git source needs a repository URL")
		}
		if len(a.Source.Git) > 1024 || strings.HasPrefix(a.Source.Git, "-") || strings.ContainsAny(a.Source.Git, " \t\r\n\x00") {
			return bad("git URL %q is not acceptable", clip(redactURL(a.Source.Git)))
		}
		if err := ValidGitRef(a.Source.Ref); err != nil {
			return bad("%v", err)
		}
	case SourceImage:
		if err := ValidImageRef(a.Source.Image); err != nil {
			return bad("%v", err)
		}
	case SourcePush:
		if err := ValidBranch(a.Source.Ref); err != nil {
			return bad("%v", err)
		}
	case SourceUpload:
	default:
		return bad("source kind %q: use git, image, upload or push", clip(string(a.Source.Kind)))
	}
	if err := ValidRelPath(a.Build.Dockerfile); err != nil {
		return bad("dockerfile: %v", err)
	}
	if err := ValidRelPath(a.Build.Context); err != nil {
		return bad("build context: %v", err)
	}
	if a.Build.Target != "" && !targetRE.MatchString(a.Build.Target) {
		return bad("build target %q is not a valid stage name", clip(a.Build.Target))
	}
	if len(a.Build.Args) > MaxBuildArg {
		return bad("at most %d build args", MaxBuildArg)
	}
	for k, v := range a.Build.Args {
		if !buildArgRE.MatchString(k) {
			return bad("build arg name %q: use letters, digits and '_'", clip(k))
		}
		if len(v) > 4096 || strings.ContainsRune(v, 0) {
			return bad("build arg %s: value too long or contains NUL", k)
		}
	}
	if a.Port < 1 || a.Port > 65535 {
		return bad("port %d: must be 1-65535", a.Port)
	}
	if a.Replicas < 1 || a.Replicas > MaxReplicas {
		return bad("replicas %d: must be 1-%d", a.Replicas, MaxReplicas)
	}
	if a.Resources.MemoryMB < 0 || (a.Resources.MemoryMB > 0 && a.Resources.MemoryMB < 6) || a.Resources.MemoryMB > 1<<20 {
		return bad("memory %d MB: must be 0 (no limit) or 6-1048576", a.Resources.MemoryMB)
	}
	if a.Resources.CPUs < 0 || a.Resources.CPUs > 256 {
		return bad("cpus %g: must be 0 (no limit) to 256", a.Resources.CPUs)
	}
	if err := a.Health.Validate(); err != nil {
		return bad("%v", err)
	}
	if len(a.Volumes) > MaxVolumes {
		return bad("at most %d volumes", MaxVolumes)
	}
	seen := map[string]bool{}
	for _, v := range a.Volumes {
		if !volNameRE.MatchString(v.Name) {
			return bad("volume name %q: use lowercase letters, digits, '_', '.', '-'", clip(v.Name))
		}
		if !path.IsAbs(v.Path) || path.Clean(v.Path) != v.Path || v.Path == "/" || !safePathRE.MatchString(v.Path) || strings.Contains(v.Path, ":") {
			return bad("volume path %q: must be a clean absolute path other than /", clip(v.Path))
		}
		if seen[v.Name] || seen["path:"+v.Path] {
			return bad("volume %q or its path is listed twice", v.Name)
		}
		seen[v.Name], seen["path:"+v.Path] = true, true
	}
	return nil
}

// Validate checks a health check whose defaults are already applied.
func (h HealthCheck) Validate() error {
	if len(h.Path) > 512 || !httpPathRE.MatchString(h.Path) {
		return fmt.Errorf("health check path %q: must start with / and use URL-safe characters", clip(h.Path))
	}
	if h.Interval < 50*time.Millisecond || h.Interval > time.Minute {
		return fmt.Errorf("health check interval %s: must be 50ms-1m", h.Interval)
	}
	if h.Timeout < 50*time.Millisecond || h.Timeout > time.Minute {
		return fmt.Errorf("health check timeout %s: must be 50ms-1m", h.Timeout)
	}
	if h.Threshold < 1 || h.Threshold > 100 {
		return fmt.Errorf("health check threshold %d: must be 1-100", h.Threshold)
	}
	if h.Deadline < time.Second || h.Deadline > 30*time.Minute {
		return fmt.Errorf("health check deadline %s: must be 1s-30m", h.Deadline)
	}
	return nil
}

// redactURL hides the userinfo of a URL (a password or an access token)
// for an error message.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if at := strings.LastIndex(s, "@"); at >= 0 && strings.Contains(s[:at], "://") {
			return s[:strings.Index(s, "://")+3] + "***" + s[at:]
		}
		return s
	}
	u.User = url.User("***")
	return u.String()
}

// clip shortens a user value for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:61] + "..."
	}
	return s
}

// AppFilter selects and pages a team's apps, sorted by name; zero fields
// select everything.
type AppFilter struct {
	Query   string   // a part of the name ("api" finds "billing-api-1"); case does not matter
	Project string   // a project's ID
	Names   []string // only these names
	// Visible, when not nil, limits the apps to these projects (IDs): a
	// member narrowed to some projects sees no other apps, not even in
	// the count.
	Visible []string
	Limit   int // at most this many; 0 means no limit
	Offset  int // skip this many first
}
