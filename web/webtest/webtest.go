// Package webtest gives the tests of package web and the benchmark a
// dashboard as big as a busy team's: Seed fills a real store with one team
// of 1,000 apps and what goes with them (deployments, releases, env vars,
// domains, logs, metrics, members, tokens, invitations, audit events) and
// signs its owner in; Open serves berth's API and dashboard in front of
// that store in memory, wired as `berth server` wires them, over an engine
// with in-memory adapters (no Docker); Pages lists every dashboard page to
// render. One seeder, so that the test that checks the pages and the
// benchmark that times them look at the same data.
package webtest

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/api"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/engine/enginetest"
	"github.com/berthhq/berth/metrics"
	"github.com/berthhq/berth/store"
	"github.com/berthhq/berth/web"
)

// Size is how much Seed writes.
type Size struct {
	Apps     int // spread evenly over Projects
	Projects int
	// Deployments per app: the newest is live (failed for one app in
	// seven, whose previous one is live), the older ones superseded; each
	// but a failed one has its release.
	Deployments int
	Env         int // env vars per app
	Domains     int // per app
	// LogLines is the length of the build log of each deployment of the
	// featured app (Team.App); other deployments have no log: the
	// deployment page reads one log by its key, so their logs would not
	// change what it costs.
	LogLines int
	// The featured app also has a full set of metrics, as the sampler
	// keeps them: raw samples every 15 s over two hours, minute averages
	// over two days and ten-minute averages over eight.
	Members     int // besides the owner: admins, developers and viewers, some narrowed to a project
	Tokens      int // the owner's API tokens
	Invitations int // pending
	Audit       int // audit events over the last week
}

// Busy is a busy team: 1,000 apps in 5 projects with the volume of data a
// year of use leaves.
var Busy = Size{Apps: 1000, Projects: 5, Deployments: 4, Env: 6, Domains: 1, LogLines: 300,
	Members: 12, Tokens: 8, Invitations: 4, Audit: 3000}

// Team is what Seed made.
type Team struct {
	ID    string
	Name  string
	Owner berth.User
	// Cookie is a signed-in session of the owner; CSRF is its CSRF token.
	Cookie *http.Cookie
	CSRF   string
	// Apps are the app names, sorted; Projects the project names (the
	// default one first), each holding an even share of the apps.
	Apps     []string
	Projects []string
	// App is the featured app (logs, metrics); Deployment the number of
	// its newest deployment, which is live.
	App        string
	Deployment int
}

// words make app names such as "billing-api-042".
var (
	areas = []string{"billing", "catalog", "checkout", "search", "auth", "mailer", "reports", "media", "chat", "ledger"}
	kinds = []string{"api", "web", "worker", "cron", "admin"}
)

// appName is the name of the i-th app: area, kind and a number, unique.
func appName(i int) string {
	return fmt.Sprintf("%s-%s-%03d", areas[i%len(areas)], kinds[(i/len(areas))%len(kinds)], i)
}

// Seed fills st, which must be empty, with one team of size sz, all of it
// dated up to now, and signs its owner in.
func Seed(ctx context.Context, st *store.Store, sz Size, now time.Time) (*Team, error) {
	if sz.Apps < 1 || sz.Projects < 1 || sz.Deployments < 2 {
		return nil, fmt.Errorf("seed: want at least 1 app, 1 project and 2 deployments per app, got %+v", sz)
	}
	now = now.UTC().Truncate(time.Second)
	start := now.Add(-365 * 24 * time.Hour)
	t := &Team{Name: "busy", Owner: berth.User{ID: berth.NewID("user"), Name: "owner", Email: "owner@busy.example", CreatedAt: start}}
	team := &berth.Team{ID: berth.NewID("team"), Name: t.Name, CreatedAt: start}
	t.ID = team.ID
	if err := st.CreateTeam(ctx, team); err != nil {
		return nil, fmt.Errorf("seed team: %w", err)
	}
	if err := st.CreateUser(ctx, &t.Owner); err != nil {
		return nil, fmt.Errorf("seed owner: %w", err)
	}
	if err := st.AddMember(ctx, t.ID, t.Owner.ID, berth.RoleOwner); err != nil {
		return nil, fmt.Errorf("seed owner: %w", err)
	}

	projects := make([]string, sz.Projects) // IDs
	t.Projects = make([]string, sz.Projects)
	for i := range projects {
		name := berth.DefaultProject
		if i > 0 {
			name = []string{"shop", "internal", "data", "marketing", "staging", "mobile", "partners"}[(i-1)%7]
			if i > 7 {
				name += "-" + strconv.Itoa(i)
			}
			pr := &berth.Project{ID: berth.NewID("proj"), TeamID: t.ID, Name: name, CreatedAt: start}
			if err := st.CreateProject(ctx, pr); err != nil {
				return nil, fmt.Errorf("seed project %s: %w", name, err)
			}
			projects[i] = pr.ID
		} else {
			pr, err := st.Project(ctx, t.ID, name)
			if err != nil {
				return nil, fmt.Errorf("seed: the default project: %w", err)
			}
			projects[i] = pr.ID
		}
		t.Projects[i] = name
	}

	featured := 0
	for i := range sz.Apps {
		a, err := seedApp(ctx, st, sz, t, projects[(i+i/10)%len(projects)], i, i == featured, start, now)
		if err != nil {
			return nil, err
		}
		t.Apps = append(t.Apps, a.Name)
	}
	slices.Sort(t.Apps)
	if err := seedPeople(ctx, st, sz, t, projects, start, now); err != nil {
		return nil, err
	}
	if err := seedAudit(ctx, st, sz, t, now); err != nil {
		return nil, err
	}

	secret, sess, err := auth.StartSession(ctx, st, t.Owner.ID, t.ID, netip.MustParseAddr("127.0.0.1"), "webtest", now)
	if err != nil {
		return nil, fmt.Errorf("seed session: %w", err)
	}
	t.Cookie = auth.SessionCookieFor(secret, sess, false)
	t.CSRF = sess.CSRF
	return t, nil
}

// seedApp writes app i with its deployments, releases, env and domains;
// the featured one also gets logs and metrics.
func seedApp(ctx context.Context, st *store.Store, sz Size, t *Team, project string, i int, featured bool, start, now time.Time) (*berth.App, error) {
	created := start.Add(time.Duration(i) * time.Hour)
	a := &berth.App{ID: berth.NewID("app"), TeamID: t.ID, ProjectID: project, Name: appName(i), CreatedAt: created, UpdatedAt: created,
		Source: berth.Source{Kind: berth.SourceGit, Git: "https://git.example.com/busy/" + appName(i) + ".git", Ref: "main"},
		Port:   8080, Replicas: 1 + i%3, Resources: berth.Resources{MemoryMB: 256, CPUs: 0.5},
		Health: berth.HealthCheck{Path: "/healthz"}}
	a.SetDefaults()
	if err := st.CreateApp(ctx, a); err != nil {
		return nil, fmt.Errorf("seed app %s: %w", a.Name, err)
	}
	env := map[string]string{}
	for k := range sz.Env {
		env[[]string{"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "LOG_LEVEL", "SENTRY_DSN", "FEATURE_FLAGS", "SMTP_URL", "S3_BUCKET"}[k%8]+suffix(k/8)] =
			fmt.Sprintf("value-%d-%d-%s", i, k, "x2Fq9LmP0aZ")
	}
	if len(env) > 0 {
		if err := st.SetEnv(ctx, t.ID, a.ID, env); err != nil {
			return nil, fmt.Errorf("seed env of %s: %w", a.Name, err)
		}
	}
	var hosts []string
	for k := range sz.Domains {
		h := a.Name + suffix(k) + ".busy.example.com"
		if err := st.AddDomain(ctx, &berth.Domain{ID: berth.NewID("dom"), TeamID: t.ID, AppID: a.ID, Host: h, CreatedAt: created}); err != nil {
			return nil, fmt.Errorf("seed domain of %s: %w", a.Name, err)
		}
		hosts = append(hosts, h)
	}

	// Deployments, oldest first, a day apart, ending an hour ago.
	failedLast := i%7 == 3 // one app in seven, across every name
	for n := range sz.Deployments {
		at := now.Add(-time.Hour - time.Duration(sz.Deployments-1-n)*24*time.Hour - time.Duration(i)*time.Second)
		last := n == sz.Deployments-1
		status := berth.StatusSuperseded
		switch {
		case last && failedLast:
			status = berth.StatusFailed
		case last, n == sz.Deployments-2 && failedLast:
			status = berth.StatusLive
		}
		commit := fmt.Sprintf("%08x%032x", i, n+1)
		d := &berth.Deployment{ID: berth.NewID("dep"), TeamID: t.ID, AppID: a.ID, Kind: berth.KindDeploy, Status: status,
			Ref: "main", Commit: commit, CreatedBy: t.Owner.Name, CreatedAt: at, Stages: stages(at, status)}
		end := d.Stages[len(d.Stages)-1].EndedAt
		d.UpdatedAt, d.FinishedAt = *end, end
		if status == berth.StatusFailed {
			d.Error = "verifying: health check GET /healthz: 503 Service Unavailable after 60s"
		}
		if status != berth.StatusFailed {
			r := &berth.Release{ID: berth.NewID("rel"), TeamID: t.ID, AppID: a.ID, Image: "sha256:" + commit + commit[:24], Commit: commit,
				DeploymentID: d.ID, CreatedAt: *end, Config: berth.ReleaseConfig{Port: a.Port, Replicas: a.Replicas,
					Resources: a.Resources, Health: a.Health, Domains: hosts, Env: env}}
			if err := st.CreateRelease(ctx, r); err != nil {
				return nil, fmt.Errorf("seed release of %s: %w", a.Name, err)
			}
			d.ReleaseID = r.ID
		}
		if err := st.CreateDeployment(ctx, d); err != nil {
			return nil, fmt.Errorf("seed deployment of %s: %w", a.Name, err)
		}
		if featured {
			if err := st.AppendLog(ctx, t.ID, d.ID, at, buildLog(sz.LogLines, commit)...); err != nil {
				return nil, fmt.Errorf("seed log of %s: %w", a.Name, err)
			}
			if status == berth.StatusLive {
				t.App, t.Deployment = a.Name, d.Number
			}
		}
	}
	if featured {
		if err := seedMetrics(ctx, st, t.ID, a.ID, now); err != nil {
			return nil, fmt.Errorf("seed metrics of %s: %w", a.Name, err)
		}
	}
	return a, nil
}

func suffix(k int) string {
	if k == 0 {
		return ""
	}
	return "-" + strconv.Itoa(k+1)
}

// stages are the stage timings of a finished deployment: a few seconds of
// fetch, half a minute of build, then start, verify and switch.
func stages(at time.Time, status berth.Status) []berth.StageTiming {
	steps := []struct {
		s berth.Status
		d time.Duration
	}{
		{berth.StatusQueued, 200 * time.Millisecond}, {berth.StatusFetching, 2 * time.Second},
		{berth.StatusBuilding, 34 * time.Second}, {berth.StatusStarting, 1500 * time.Millisecond},
		{berth.StatusVerifying, 3 * time.Second}, {berth.StatusSwitching, 100 * time.Millisecond},
	}
	var out []berth.StageTiming
	t := at
	for _, st := range steps {
		d := st.d
		if status == berth.StatusFailed && st.s == berth.StatusVerifying {
			d = 60 * time.Second
		}
		end := t.Add(d)
		out = append(out, berth.StageTiming{Stage: st.s, StartedAt: t, EndedAt: &end})
		t = end
		if status == berth.StatusFailed && st.s == berth.StatusVerifying {
			break
		}
	}
	return out
}

// buildLog is n lines of a Docker build's output, some coloured.
func buildLog(n int, commit string) []string {
	out := make([]string, 0, n)
	for i := range n {
		var line string
		switch {
		case i == 0:
			line = "\x1b[1mfetching\x1b[0m https://git.example.com/busy/app.git at main (" + commit[:12] + ")"
		case i%25 == 1:
			line = fmt.Sprintf("\x1b[36mStep %d/%d\x1b[0m : RUN npm ci --omit=dev", i/25+1, n/25+1)
		case i%40 == 7:
			line = "\x1b[33mnpm warn deprecated\x1b[0m inflight@1.0.6: This module is not supported, and leaks memory."
		default:
			line = fmt.Sprintf("added %d packages, and audited %d packages in %ds; layer sha256:%s%04x", i*3, i*3+1, i%9+1, commit[8:28], i)
		}
		out = append(out, line)
	}
	return out
}

// seedMetrics writes an app's metrics as the sampler keeps them (package
// metrics): raw samples every 15 s for the last two hours, and the minute
// and ten-minute averages of the samples up to the last whole interval,
// kept two and eight days.
func seedMetrics(ctx context.Context, st *store.Store, teamID, appID string, now time.Time) error {
	sample := func(at time.Time) berth.MetricSample {
		x := float64(at.Unix()) / 600
		return berth.MetricSample{TeamID: teamID, AppID: appID, At: at,
			CPUPercent: 20 + 15*math.Sin(x), MemoryBytes: int64(180e6 + 40e6*math.Sin(x/3)), MemoryLimit: 256 << 20,
			RxRate: 40e3 + 30e3*math.Sin(x*2), TxRate: 120e3 + 90e3*math.Cos(x), Replicas: 2}
	}
	const every = 15 * time.Second
	var raw []berth.MetricSample
	for at := now.Add(-metrics.RawRetention); !at.After(now); at = at.Add(every) {
		raw = append(raw, sample(at))
	}
	if err := st.AddMetricSamples(ctx, raw); err != nil {
		return err
	}
	for _, r := range []struct{ step, keep time.Duration }{{time.Minute, metrics.MinuteRetention}, {10 * time.Minute, metrics.TenMinuteRetention}} {
		var ups []berth.MetricSample
		end := now.Add(-every).Truncate(r.step)
		for at := now.Add(-r.keep).Truncate(r.step); at.Before(end); at = at.Add(r.step) {
			ups = append(ups, sample(at))
		}
		if err := st.AddMetricRollups(ctx, r.step, ups); err != nil {
			return err
		}
	}
	return nil
}

// seedPeople writes the team's other members, the owner's tokens and
// pending invitations.
func seedPeople(ctx context.Context, st *store.Store, sz Size, t *Team, projects []string, start, now time.Time) error {
	roles := []berth.Role{berth.RoleAdmin, berth.RoleDeveloper, berth.RoleDeveloper, berth.RoleViewer}
	for i := range sz.Members {
		u := &berth.User{ID: berth.NewID("user"), Name: fmt.Sprintf("member%02d", i+1),
			Email: fmt.Sprintf("member%02d@busy.example", i+1), CreatedAt: start.Add(time.Duration(i) * 24 * time.Hour)}
		if err := st.CreateUser(ctx, u); err != nil {
			return fmt.Errorf("seed member: %w", err)
		}
		role := roles[i%len(roles)]
		if err := st.AddMember(ctx, t.ID, u.ID, role); err != nil {
			return fmt.Errorf("seed member: %w", err)
		}
		if role.Narrowable() && i%2 == 1 {
			if err := st.SetMemberProjects(ctx, t.ID, u.ID, []string{projects[i%len(projects)]}); err != nil {
				return fmt.Errorf("seed member projects: %w", err)
			}
		}
	}
	scopes := [][]berth.Scope{{berth.ScopeDeploy}, {berth.ScopeRead}, {berth.ScopeWrite}, {berth.ScopeAdmin}}
	for i := range sz.Tokens {
		exp := now.Add(time.Duration(30+i) * 24 * time.Hour)
		if _, _, err := auth.IssueToken(ctx, st, t.ID, t.Owner.ID, fmt.Sprintf("ci-%02d", i+1), scopes[i%len(scopes)], &exp, now.Add(-time.Duration(i)*time.Hour)); err != nil {
			return fmt.Errorf("seed token: %w", err)
		}
	}
	for i := range sz.Invitations {
		_, hash, err := auth.NewToken()
		if err != nil {
			return err
		}
		inv := &berth.Invitation{ID: berth.NewID("inv"), TeamID: t.ID, Email: fmt.Sprintf("new%02d@busy.example", i+1),
			Role: berth.RoleDeveloper, Hash: hash, InvitedBy: t.Owner.ID, CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(6 * 24 * time.Hour)}
		if err := st.CreateInvitation(ctx, inv); err != nil {
			return fmt.Errorf("seed invitation: %w", err)
		}
	}
	return nil
}

// seedAudit writes sz.Audit events spread over the last week.
func seedAudit(ctx context.Context, st *store.Store, sz Size, t *Team, now time.Time) error {
	actions := []string{"deployment.create", "env.update", "app.update", "app.rollback", "domain.add", "token.create", "member.invite"}
	for i := range sz.Audit {
		e := &berth.AuditEvent{ID: berth.NewID("aud"), TeamID: t.ID, At: now.Add(-time.Duration(i) * 7 * 24 * time.Hour / time.Duration(max(sz.Audit, 1))),
			ActorID: t.Owner.ID, ActorName: t.Owner.Name, Action: actions[i%len(actions)], Target: appName(i % sz.Apps),
			ClientAddr: "192.0.2.10", Outcome: berth.OutcomeSuccess, Status: http.StatusOK}
		if i%17 == 5 {
			e.Outcome, e.Status, e.Detail = berth.OutcomeFailed, http.StatusBadRequest, "env: key \"1BAD\": use letters, digits and _"
		}
		if err := st.AddAuditEvent(ctx, e); err != nil {
			return fmt.Errorf("seed audit event: %w", err)
		}
	}
	return nil
}

// Dashboard is berth's API and dashboard in front of a store, served in
// memory.
type Dashboard struct {
	// Handler serves /api/, /healthz and the dashboard as `berth server`
	// does.
	Handler http.Handler
	stop    func()
}

// Open serves the API and the dashboard over st, with an engine whose
// Docker, builder, git and proxy are in-memory fakes (enginetest), keeping
// its work files under dir. Close stops the engine's queue.
func Open(st *store.Store, dir string, log *slog.Logger) (*Dashboard, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	eng, _, stop, err := enginetest.Start(st, filepath.Join(dir, "work"))
	if err != nil {
		return nil, fmt.Errorf("start engine: %w", err)
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		stop()
		return nil, err
	}
	apiSrv := api.New(api.Config{Store: st, Engine: eng, Log: log, InsecureCookies: true,
		Health: api.HealthProbe{Docker: func(context.Context) error { return nil }, DataDir: data}})
	apiH := apiSrv.Handler()
	mux := http.NewServeMux()
	mux.Handle("/api/", api.SecureHeaders(apiH))
	mux.Handle("/healthz", api.SecureHeaders(apiH))
	mux.Handle("/", api.SecurePageHeaders(web.New(web.Config{API: apiH, Log: log}).Handler()))
	return &Dashboard{Handler: mux, stop: stop}, nil
}

// Close stops the engine.
func (d *Dashboard) Close() { d.stop() }

// Page is a dashboard page to render.
type Page struct {
	Name string // short, for reports: "apps", "app", …
	Path string
	// SignedOut pages are fetched without the session cookie.
	SignedOut bool
	// Shows are texts the page must contain: what a person expects to
	// see there.
	Shows []string
}

// Pages are every dashboard page of the team, with what each must show.
func (t *Team) Pages() []Page {
	first, last := t.Apps[0], t.Apps[len(t.Apps)-1]
	app := "/apps/" + t.App
	q := areas[1] // "catalog"
	return []Page{
		{Name: "login", Path: "/login", SignedOut: true, Shows: []string{"Sign in"}},
		{Name: "apps", Path: "/apps", Shows: []string{first, "Page 1 of", "page=2"}},
		{Name: "apps-last-page", Path: "/apps?page=" + strconv.Itoa((len(t.Apps)+49)/50), Shows: []string{last}},
		{Name: "apps-search", Path: "/apps?q=" + q, Shows: []string{q + "-"}},
		{Name: "apps-project", Path: "/apps?project=" + t.Projects[len(t.Projects)-1], Shows: []string{t.Projects[len(t.Projects)-1]}},
		{Name: "new-app", Path: "/apps/new", Shows: []string{"New app"}},
		{Name: "app", Path: app, Shows: []string{t.App, "live", "CPU"}},
		{Name: "app-24h", Path: app + "?range=24h", Shows: []string{t.App, "CPU"}},
		{Name: "app-7d", Path: app + "?range=7d", Shows: []string{t.App, "CPU"}},
		{Name: "env", Path: app + "/env", Shows: []string{"DATABASE_URL"}},
		{Name: "deployment", Path: app + "/deployments/" + strconv.Itoa(t.Deployment), Shows: []string{"Step 1/"}},
		{Name: "members", Path: "/members", Shows: []string{"member01", "new01@busy.example"}},
		{Name: "tokens", Path: "/tokens", Shows: []string{"ci-01"}},
		{Name: "audit", Path: "/audit", Shows: []string{"deployment.create"}},
		{Name: "server", Path: "/server", Shows: []string{"Docker"}},
		{Name: "projects", Path: "/projects", Shows: []string{"Projects of", t.Projects[0]}},
		{Name: "account", Path: "/account", Shows: []string{"Your account", "Two-factor authentication"}},
		{Name: "webhooks", Path: app + "/webhooks", Shows: []string{"Push to deploy"}},
		{Name: "previews", Path: app + "/previews", Shows: []string{"Preview environments"}},
		{Name: "access", Path: app + "/access", Shows: []string{"Deploy key (ssh)"}},
	}
}

// Request is a GET of page p as the team's signed-in owner (without the
// cookie for a signed-out page), as a browser on loopback sends it.
func (t *Team) Request(p Page) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "http://berth.localhost"+p.Path, nil)
	r.RemoteAddr = "127.0.0.1:50000"
	r.Header.Set("User-Agent", "webtest")
	if !p.SignedOut {
		r.AddCookie(t.Cookie)
	}
	return r
}
