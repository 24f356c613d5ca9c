package web

import (
	"bufio"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthhq/berth"
)

// loginView is the sign-in form, refilled after a refusal.
type loginView struct {
	Email, Team string
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request, f *flash) {
	v := &view{Title: "Sign in", Data: loginView{Email: r.PostFormValue("email"), Team: r.FormValue("team")}}
	s.show(w, r, v, "login", f)
}

// login signs in through POST /api/v1/login and hands its session cookie
// to the browser.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if err := readForm(w, r); err != nil {
		s.loginPage(w, r, s.failed(r, err))
		return
	}
	req := map[string]string{"email": strings.TrimSpace(r.PostFormValue("email")), "password": r.PostFormValue("password")}
	if c := strings.TrimSpace(r.PostFormValue("code")); c != "" {
		req["totp_code"] = c
	}
	if c := strings.TrimSpace(r.PostFormValue("recovery_code")); c != "" {
		req["recovery_code"] = c
	}
	if t := strings.TrimSpace(r.PostFormValue("team")); t != "" {
		req["team"] = t
	}
	a, err := s.call(r, "POST", "/api/v1/login", req, nil, "")
	if err != nil {
		s.loginPage(w, r, s.failed(r, err))
		return
	}
	for _, c := range a.header.Values("Set-Cookie") {
		w.Header().Add("Set-Cookie", c)
	}
	http.Redirect(w, r, "/apps", http.StatusSeeOther)
}

// logout ends the session through POST /api/v1/logout.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if err := readForm(w, r); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	a, err := s.call(r, "POST", "/api/v1/logout", nil, nil, r.PostFormValue("csrf"))
	if err != nil {
		if ae, ok := err.(*apiError); !ok || ae.Status != http.StatusUnauthorized {
			s.errorPage(w, r, &view{}, s.failed(r, err))
			return
		}
	}
	if a != nil {
		for _, c := range a.header.Values("Set-Cookie") {
			w.Header().Add("Set-Cookie", c)
		}
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// appRow is a row of the apps table.
type appRow struct {
	App    berth.App
	Status string
	Last   *berth.Deployment
}

func (s *Server) appsPage(w http.ResponseWriter, r *http.Request, f *flash) {
	v := s.signedIn(w, r)
	if v == nil {
		return
	}
	v.Title, v.Nav = "Apps", "apps"
	var apps []berth.App
	if err := s.get(r, "/api/v1/apps", &apps); err != nil {
		s.errorPage(w, r, v, s.failed(r, err))
		return
	}
	// The newest deployment of every app, in one call; without it the
	// rows just show no status.
	var latest []berth.Deployment
	_ = s.get(r, "/api/v1/deployments", &latest)
	last := make(map[string]*berth.Deployment, len(latest))
	for i := range latest {
		last[latest[i].AppID] = &latest[i]
	}
	rows := make([]appRow, len(apps))
	for i, a := range apps {
		rows[i] = appRow{App: a, Status: "not deployed"}
		if d := last[a.ID]; d != nil {
			rows[i].Last, rows[i].Status = d, string(d.Status)
		}
	}
	v.Data = rows
	s.show(w, r, v, "apps", f)
}

// appForm is the create-app form, refilled after a refusal.
type appForm struct {
	Name, Git, Ref, Image, Port string
}

func (s *Server) newAppPage(w http.ResponseWriter, r *http.Request, f *flash) {
	v := s.signedIn(w, r)
	if v == nil {
		return
	}
	v.Title, v.Nav = "New app", "apps"
	v.Data = appForm{Name: r.PostFormValue("name"), Git: r.PostFormValue("git"), Ref: r.PostFormValue("ref"),
		Image: r.PostFormValue("image"), Port: r.PostFormValue("port")}
	s.show(w, r, v, "newapp", f)
}

// invalid is a refusal of a form field before it reaches the API.
func invalid(format string, args ...any) error {
	return &apiError{Status: http.StatusBadRequest, Detail: fmt.Sprintf(format, args...)}
}

// number reads an optional whole number field; "" is 0.
func number(r *http.Request, field string) (int, error) {
	v := strings.TrimSpace(r.PostFormValue(field))
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, invalid("%s: give a whole number", field)
	}
	return n, nil
}

func (s *Server) createApp(w http.ResponseWriter, r *http.Request) {
	s.act(w, r, s.newAppPage, func() (string, error) {
		port, err := number(r, "port")
		if err != nil {
			return "", err
		}
		src := map[string]string{}
		if img := strings.TrimSpace(r.PostFormValue("image")); img != "" {
			src["image"] = img
		} else if g := strings.TrimSpace(r.PostFormValue("git")); g != "" {
			src["git"] = g
			if ref := strings.TrimSpace(r.PostFormValue("ref")); ref != "" {
				src["ref"] = ref
			}
		}
		body := map[string]any{"name": strings.TrimSpace(r.PostFormValue("name")), "source": src}
		if port > 0 {
			body["port"] = port
		}
		var a berth.App
		if err := s.send(r, "POST", "/api/v1/apps", body, &a); err != nil {
			return "", err
		}
		return p("/apps/%s", a.Name), nil
	})
}

// domainStatus is a domain with its certificate, as GET …/domains answers.
type domainStatus struct {
	berth.Domain
	Certificate berth.Certificate `json:"certificate"`
}

// appStatus is GET /api/v1/apps/{app}/status.
type appStatus struct {
	Live       *berth.Deployment `json:"live"`
	Release    *berth.Release    `json:"release"`
	Active     *berth.Deployment `json:"active"`
	Containers []berth.Container `json:"containers"`
}

// appView is the app page.
type appView struct {
	App         berth.App
	Status      *appStatus
	StatusError string
	Domains     []domainStatus
	Deployments []berth.Deployment
	Releases    []berth.Release
	Volumes     string
	// Metrics: the range shown ("1h", "24h", "7d") and its charts.
	Range  string
	Ranges []string
	Charts []template.HTML
}

// metricRanges are the ranges the metrics API serves.
var metricRanges = []string{"1h", "24h", "7d"}

// charts reads app's metrics over rng and draws them: CPU, memory, and
// network received and sent.
func (s *Server) charts(r *http.Request, app, rng string) []template.HTML {
	var m struct {
		Points []berth.MetricSample `json:"points"`
	}
	if err := s.get(r, p("/api/v1/apps/%s/metrics?range=%s", app, rng), &m); err != nil || len(m.Points) == 0 {
		return nil
	}
	cpu := make([]ChartPoint, len(m.Points))
	mem := make([]ChartPoint, len(m.Points))
	rx := make([]ChartPoint, len(m.Points))
	tx := make([]ChartPoint, len(m.Points))
	for i, pt := range m.Points {
		cpu[i] = ChartPoint{At: pt.At, Value: pt.CPUPercent}
		mem[i] = ChartPoint{At: pt.At, Value: float64(pt.MemoryBytes)}
		rx[i] = ChartPoint{At: pt.At, Value: pt.RxRate}
		tx[i] = ChartPoint{At: pt.At, Value: pt.TxRate}
	}
	const w, h = 480, 160
	return []template.HTML{
		Chart("CPU", "%", cpu, w, h),
		Chart("Memory", "B", mem, w, h),
		Chart("Network received", "B/s", rx, w, h),
		Chart("Network sent", "B/s", tx, w, h),
	}
}

// loadApp reads app {app}; on failure it has answered the request.
func (s *Server) loadApp(w http.ResponseWriter, r *http.Request, v *view) (*berth.App, bool) {
	var a berth.App
	if err := s.get(r, p("/api/v1/apps/%s", r.PathValue("app")), &a); err != nil {
		s.errorPage(w, r, v, s.failed(r, err))
		return nil, false
	}
	return &a, true
}

func (s *Server) appPage(w http.ResponseWriter, r *http.Request, f *flash) {
	v := s.signedIn(w, r)
	if v == nil {
		return
	}
	v.Nav = "apps"
	a, ok := s.loadApp(w, r, v)
	if !ok {
		return
	}
	v.Title = a.Name
	av := appView{App: *a}
	var st appStatus
	if err := s.get(r, p("/api/v1/apps/%s/status", a.Name), &st); err != nil {
		av.StatusError = s.failed(r, err).Error
	} else {
		av.Status = &st
	}
	_ = s.get(r, p("/api/v1/apps/%s/domains", a.Name), &av.Domains)
	_ = s.get(r, p("/api/v1/apps/%s/deployments?limit=20", a.Name), &av.Deployments)
	_ = s.get(r, p("/api/v1/apps/%s/releases?limit=20", a.Name), &av.Releases)
	var vols []string
	for _, vol := range a.Volumes {
		vols = append(vols, vol.Name+":"+vol.Path)
	}
	av.Volumes = strings.Join(vols, "\n")
	av.Range, av.Ranges = "1h", metricRanges
	if rng := r.URL.Query().Get("range"); slices.Contains(metricRanges, rng) {
		av.Range = rng
	}
	av.Charts = s.charts(r, a.Name, av.Range)
	v.Data = av
	s.show(w, r, v, "app", f)
}

// deployed answers a deploy or rollback with the deployment's page.
func deployed(app string, d *berth.Deployment) string {
	return p("/apps/%s/deployments/%s", app, strconv.Itoa(d.Number))
}

func (s *Server) deploy(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	s.act(w, r, s.appPage, func() (string, error) {
		var d berth.Deployment
		if err := s.send(r, "POST", p("/api/v1/apps/%s/deployments", app), nil, &d); err != nil {
			return "", err
		}
		return deployed(app, &d), nil
	})
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	s.act(w, r, s.appPage, func() (string, error) {
		var d berth.Deployment
		body := map[string]string{"release": r.PostFormValue("release")}
		if err := s.send(r, "POST", p("/api/v1/apps/%s/rollback", app), body, &d); err != nil {
			return "", err
		}
		return deployed(app, &d), nil
	})
}

// settingsPatch turns the settings form into a JSON merge patch of the app.
func settingsPatch(r *http.Request) (map[string]any, error) {
	f := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	src := map[string]any{"kind": f("kind")}
	switch berth.SourceKind(f("kind")) {
	case berth.SourceGit:
		src["git"], src["ref"], src["image"] = f("git"), f("ref"), nil
	case berth.SourceImage:
		src["image"], src["git"], src["ref"] = f("image"), nil, nil
	case berth.SourceUpload:
		src["git"], src["ref"], src["image"] = nil, nil, nil
	default:
		return nil, invalid("source: choose git, image or upload")
	}
	port, err := number(r, "port")
	if err != nil {
		return nil, err
	}
	replicas, err := number(r, "replicas")
	if err != nil {
		return nil, err
	}
	mem, err := number(r, "memory_mb")
	if err != nil {
		return nil, err
	}
	threshold, err := number(r, "health_threshold")
	if err != nil {
		return nil, err
	}
	var cpus float64
	if c := f("cpus"); c != "" {
		if cpus, err = strconv.ParseFloat(c, 64); err != nil || cpus < 0 {
			return nil, invalid("cpus: give a number such as 0.5")
		}
	}
	health := map[string]any{"path": f("health_path"), "threshold": threshold}
	for _, k := range []string{"interval", "timeout", "deadline"} {
		if d := f("health_" + k); d != "" {
			health[k] = d
		} else {
			health[k] = "0s"
		}
	}
	vols := []map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(r.PostFormValue("volumes")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		name, path, ok := strings.Cut(line, ":")
		if !ok {
			return nil, invalid("volumes: write one NAME:/path per line")
		}
		vols = append(vols, map[string]string{"name": strings.TrimSpace(name), "path": strings.TrimSpace(path)})
	}
	return map[string]any{
		"source":    src,
		"build":     map[string]any{"dockerfile": f("dockerfile"), "context": f("context"), "target": f("target")},
		"port":      port,
		"replicas":  replicas,
		"resources": map[string]any{"memory_mb": mem, "cpus": cpus},
		"health":    health,
		"volumes":   vols,
	}, nil
}

func (s *Server) updateApp(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	s.act(w, r, s.appPage, func() (string, error) {
		patch, err := settingsPatch(r)
		if err != nil {
			return "", err
		}
		if err := s.send(r, "PATCH", p("/api/v1/apps/%s", app), patch, nil); err != nil {
			return "", err
		}
		return p("/apps/%s", app) + "#settings", nil
	})
}

func (s *Server) deleteApp(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	s.act(w, r, s.appPage, func() (string, error) {
		if r.PostFormValue("confirm") != app {
			return "", invalid("type the app's name to delete it")
		}
		return "/apps", s.send(r, "DELETE", p("/api/v1/apps/%s", app), nil, nil)
	})
}

func (s *Server) addDomain(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	s.act(w, r, s.appPage, func() (string, error) {
		body := map[string]string{"host": r.PostFormValue("host")}
		return p("/apps/%s", app) + "#domains", s.send(r, "POST", p("/api/v1/apps/%s/domains", app), body, nil)
	})
}

func (s *Server) removeDomain(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	s.act(w, r, s.appPage, func() (string, error) {
		return p("/apps/%s", app) + "#domains", s.send(r, "DELETE", p("/api/v1/apps/%s/domains/%s", app, r.PostFormValue("host")), nil, nil)
	})
}

// envVar is an env var as the API shows it.
type envVar struct {
	Key       string    `json:"key"`
	Redacted  bool      `json:"redacted"`
	UpdatedAt time.Time `json:"updated_at"`
}

// envView is the env page: keys only, values always masked.
type envView struct {
	App  berth.App
	Vars []envVar
	Key  string
}

func (s *Server) envPage(w http.ResponseWriter, r *http.Request, f *flash) {
	v := s.signedIn(w, r)
	if v == nil {
		return
	}
	v.Nav = "apps"
	a, ok := s.loadApp(w, r, v)
	if !ok {
		return
	}
	v.Title = a.Name + " · environment"
	ev := envView{App: *a, Key: r.PostFormValue("key")}
	if err := s.get(r, p("/api/v1/apps/%s/env", a.Name), &ev.Vars); err != nil {
		s.errorPage(w, r, v, s.failed(r, err))
		return
	}
	v.Data = ev
	s.show(w, r, v, "env", f)
}

func (s *Server) setEnv(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	s.act(w, r, s.envPage, func() (string, error) {
		body := map[string]any{"set": map[string]string{strings.TrimSpace(r.PostFormValue("key")): r.PostFormValue("value")},
			"deploy": r.PostFormValue("deploy") == "on"}
		return p("/apps/%s/env", app), s.send(r, "PATCH", p("/api/v1/apps/%s/env", app), body, nil)
	})
}

func (s *Server) unsetEnv(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	s.act(w, r, s.envPage, func() (string, error) {
		body := map[string]any{"unset": []string{r.PostFormValue("key")}}
		return p("/apps/%s/env", app), s.send(r, "PATCH", p("/api/v1/apps/%s/env", app), body, nil)
	})
}

// logLine is a stored log line, split into its ANSI-coloured spans.
type logLine struct {
	Seq   int64
	Spans []span
}

// deploymentView is the deployment page.
type deploymentView struct {
	App        berth.App
	Deployment berth.Deployment
	Lines      []logLine
	LastSeq    int64
	Stream     string
}

func (s *Server) deploymentPage(w http.ResponseWriter, r *http.Request, f *flash) {
	v := s.signedIn(w, r)
	if v == nil {
		return
	}
	v.Nav = "apps"
	a, ok := s.loadApp(w, r, v)
	if !ok {
		return
	}
	var d berth.Deployment
	if err := s.get(r, p("/api/v1/apps/%s/deployments/%s", a.Name, r.PathValue("n")), &d); err != nil {
		s.errorPage(w, r, v, s.failed(r, err))
		return
	}
	v.Title = fmt.Sprintf("%s · deployment #%d", a.Name, d.Number)
	dv := deploymentView{App: *a, Deployment: d, Stream: p("/api/v1/apps/%s/deployments/%s/log", a.Name, d.ID)}
	ans, err := s.call(r, "GET", dv.Stream, nil, nil, "")
	if err != nil {
		s.errorPage(w, r, v, s.failed(r, err))
		return
	}
	sc := bufio.NewScanner(&ans.body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		dv.LastSeq++
		dv.Lines = append(dv.Lines, logLine{Seq: dv.LastSeq, Spans: ansiSpans(sc.Text())})
	}
	v.Data = dv
	s.show(w, r, v, "deployment", f)
}

func (s *Server) cancelDeployment(w http.ResponseWriter, r *http.Request) {
	app, n := r.PathValue("app"), r.PathValue("n")
	s.act(w, r, s.deploymentPage, func() (string, error) {
		return p("/apps/%s/deployments/%s", app, n), s.send(r, "POST", p("/api/v1/apps/%s/deployments/%s/cancel", app, n), nil, nil)
	})
}

// invitation is a pending invitation.
type invitation struct {
	ID        string     `json:"id"`
	Email     string     `json:"email"`
	Role      berth.Role `json:"role"`
	ExpiresAt time.Time  `json:"expires_at"`
}

// invited is the answer to an invitation, shown once.
type invited struct {
	Secret    string `json:"secret"`
	AcceptURL string `json:"accept_url"`
}

// membersView is the members page.
type membersView struct {
	Members     []berth.Member
	Invitations []invitation
	Roles       []berth.Role
	Invited     *invited
	Email       string
}

var roles = []berth.Role{berth.RoleOwner, berth.RoleAdmin, berth.RoleDeveloper, berth.RoleViewer}

func (s *Server) membersPage(w http.ResponseWriter, r *http.Request, f *flash) {
	v := s.signedIn(w, r)
	if v == nil {
		return
	}
	v.Title, v.Nav = "Members", "members"
	mv := membersView{Roles: roles, Email: r.PostFormValue("email")}
	if err := s.get(r, "/api/v1/members", &mv.Members); err != nil {
		s.errorPage(w, r, v, s.failed(r, err))
		return
	}
	_ = s.get(r, "/api/v1/invitations", &mv.Invitations) // admins only
	if f != nil {
		mv.Invited, _ = f.Secret.(*invited)
	}
	v.Data = mv
	s.show(w, r, v, "members", f)
}

func (s *Server) invite(w http.ResponseWriter, r *http.Request) {
	if err := readForm(w, r); err != nil {
		s.membersPage(w, r, s.failed(r, err))
		return
	}
	var in invited
	body := map[string]string{"email": strings.TrimSpace(r.PostFormValue("email")), "role": r.PostFormValue("role")}
	if err := s.send(r, "POST", "/api/v1/invitations", body, &in); err != nil {
		s.membersPage(w, r, s.failed(r, err))
		return
	}
	// The secret is shown on this answer only, never stored by the page.
	r.Form.Del("email")
	s.membersPage(w, r, &flash{Status: http.StatusCreated, Secret: &in, Notice: "Invitation created."})
}

func (s *Server) setRole(w http.ResponseWriter, r *http.Request) {
	s.act(w, r, s.membersPage, func() (string, error) {
		body := map[string]string{"role": r.PostFormValue("role")}
		return "/members", s.send(r, "PATCH", p("/api/v1/members/%s", r.PathValue("user")), body, nil)
	})
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request) {
	s.act(w, r, s.membersPage, func() (string, error) {
		return "/members", s.send(r, "DELETE", p("/api/v1/members/%s", r.PathValue("user")), nil, nil)
	})
}

func (s *Server) revokeInvitation(w http.ResponseWriter, r *http.Request) {
	s.act(w, r, s.membersPage, func() (string, error) {
		return "/members", s.send(r, "DELETE", p("/api/v1/invitations/%s", r.PathValue("id")), nil, nil)
	})
}

// tokenCreated is a new token with its secret, shown once.
type tokenCreated struct {
	Token  berth.Token `json:"token"`
	Secret string      `json:"secret"`
}

// tokensView is the tokens page.
type tokensView struct {
	Tokens  []berth.Token
	Scopes  []berth.Scope
	Created *tokenCreated
	Name    string
}

var scopes = []berth.Scope{berth.ScopeRead, berth.ScopeReadSecrets, berth.ScopeDeploy, berth.ScopeWrite, berth.ScopeAdmin}

func (s *Server) tokensPage(w http.ResponseWriter, r *http.Request, f *flash) {
	v := s.signedIn(w, r)
	if v == nil {
		return
	}
	v.Title, v.Nav = "API tokens", "tokens"
	tv := tokensView{Scopes: scopes, Name: r.PostFormValue("name")}
	if err := s.get(r, "/api/v1/tokens", &tv.Tokens); err != nil {
		s.errorPage(w, r, v, s.failed(r, err))
		return
	}
	if f != nil {
		tv.Created, _ = f.Secret.(*tokenCreated)
	}
	v.Data = tv
	s.show(w, r, v, "tokens", f)
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	if err := readForm(w, r); err != nil {
		s.tokensPage(w, r, s.failed(r, err))
		return
	}
	var tc tokenCreated
	body := map[string]any{"name": strings.TrimSpace(r.PostFormValue("name")), "scopes": r.PostForm["scopes"]}
	if e := strings.TrimSpace(r.PostFormValue("expires_in")); e != "" {
		body["expires_in"] = e
	}
	if err := s.send(r, "POST", "/api/v1/tokens", body, &tc); err != nil {
		s.tokensPage(w, r, s.failed(r, err))
		return
	}
	r.Form.Del("name")
	s.tokensPage(w, r, &flash{Status: http.StatusCreated, Secret: &tc, Notice: "Token created."})
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	s.act(w, r, s.tokensPage, func() (string, error) {
		return "/tokens", s.send(r, "DELETE", p("/api/v1/tokens/%s", r.PathValue("id")), nil, nil)
	})
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request, f *flash) {
	v := s.signedIn(w, r)
	if v == nil {
		return
	}
	v.Title, v.Nav = "Audit log", "audit"
	var events []berth.AuditEvent
	if err := s.get(r, "/api/v1/audit?limit=200", &events); err != nil {
		s.errorPage(w, r, v, s.failed(r, err))
		return
	}
	v.Data = events
	s.show(w, r, v, "audit", f)
}

// serverHealth is GET /api/v1/server/health.
type serverHealth struct {
	Docker      string `json:"docker"`
	DockerError string `json:"docker_error"`
	Disk        *struct {
		Path       string `json:"path"`
		TotalBytes uint64 `json:"total_bytes"`
		FreeBytes  uint64 `json:"free_bytes"`
	} `json:"disk"`
	Memory *struct {
		TotalBytes     uint64 `json:"total_bytes"`
		AvailableBytes uint64 `json:"available_bytes"`
	} `json:"memory"`
	CPUs      int       `json:"cpus"`
	Load      []float64 `json:"load"`
	CheckedAt time.Time `json:"checked_at"`
}

func (s *Server) serverPage(w http.ResponseWriter, r *http.Request, f *flash) {
	v := s.signedIn(w, r)
	if v == nil {
		return
	}
	v.Title, v.Nav = "Server", "server"
	var h serverHealth
	if err := s.get(r, "/api/v1/server/health", &h); err != nil {
		s.errorPage(w, r, v, s.failed(r, err))
		return
	}
	v.Data = h
	s.show(w, r, v, "server", f)
}

// funcs are the templates' helpers.
var funcs = map[string]any{
	"since": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"short": func(c string) string {
		if len(c) > 12 {
			return c[:12]
		}
		return c
	},
	"stage": func(st berth.StageTiming) string {
		if st.EndedAt == nil {
			return string(st.Stage) + " …"
		}
		return fmt.Sprintf("%s %s", st.Stage, st.EndedAt.Sub(st.StartedAt).Round(10*time.Millisecond))
	},
	"bytes": func(n uint64) string {
		const unit = 1024
		if n < unit {
			return fmt.Sprintf("%d B", n)
		}
		div, exp := uint64(unit), 0
		for m := n / unit; m >= unit; m /= unit {
			div *= unit
			exp++
		}
		return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
	},
	"pct": func(part, total uint64) string {
		if total == 0 {
			return "?"
		}
		return fmt.Sprintf("%.0f%%", 100*float64(part)/float64(total))
	},
	"has":    func(list []berth.Scope, s berth.Scope) bool { return slices.Contains(list, s) },
	"can":    func(m *me, s berth.Scope) bool { return m != nil && berth.Allows(m.Scopes, s) },
	"qs":     url.QueryEscape,
	"active": func(st berth.Status) bool { return st.Active() },
}
