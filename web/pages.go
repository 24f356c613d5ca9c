package web

import (
	"bufio"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"path"
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
	App     berth.App
	Project string // its project's name
	Status  string
	Last    *lastDeployment
}

// lastDeployment is what the apps table shows of an app's newest
// deployment. Reading only these fields of the API's answer skips
// decoding the stage timings, a good part of the list's cost.
type lastDeployment struct {
	AppID     string       `json:"app_id"`
	Number    int          `json:"number"`
	Status    berth.Status `json:"status"`
	CreatedAt time.Time    `json:"created_at"`
}

// appsPerPage is how many apps a page of the apps list shows.
const appsPerPage = 50

// appsView is a page of the apps list, with its filters.
type appsView struct {
	Rows []appRow
	// The filters as the browser sent them: a part of the name, a
	// project's name; Projects are the ones to choose from.
	Query, Project string
	Projects       []berth.Project
	// Page is the page shown of Pages; Total how many apps the filters
	// select; First and Last the positions of the rows shown (1-based).
	Page, Pages, Total, First, Last int
	Prev, Next                      string // links to the other pages; "" when none
}

// Filtered reports whether a filter narrows the list.
func (v appsView) Filtered() bool { return v.Query != "" || v.Project != "" }

// link is the list's address for page n, with the same filters.
func (v appsView) link(n int) string {
	q := url.Values{}
	if v.Query != "" {
		q.Set("q", v.Query)
	}
	if v.Project != "" {
		q.Set("project", v.Project)
	}
	if n > 1 {
		q.Set("page", strconv.Itoa(n))
	}
	if len(q) == 0 {
		return "/apps"
	}
	return "/apps?" + q.Encode()
}

// appsPage lists the team's apps by name, a page of appsPerPage at a time,
// optionally filtered by a part of the name (?q=) and a project
// (?project=), each with the status of its newest deployment. It asks the
// API for that page only and for the newest deployments of its apps only,
// so its cost does not grow with the team.
func (s *Server) appsPage(w http.ResponseWriter, r *http.Request, f *flash) {
	v := s.signedIn(w, r)
	if v == nil {
		return
	}
	v.Title, v.Nav = "Apps", "apps"
	q := r.URL.Query()
	av := appsView{Query: strings.TrimSpace(q.Get("q")), Project: strings.TrimSpace(q.Get("project")), Page: 1}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 1 {
		av.Page = min(n, 1_000_000/appsPerPage) // past the end shows the last page
	}
	_ = s.get(r, "/api/v1/projects", &av.Projects) // the filter is optional
	apps, err := s.appsOf(r, &av)
	if err != nil {
		fl := s.failed(r, err)
		if fl.Status >= http.StatusInternalServerError {
			s.errorPage(w, r, v, fl)
			return
		}
		// A filter the API refuses (an unknown project, a query too
		// long): the page, empty, with the form to change it.
		v.Data = av
		s.show(w, r, v, "apps", fl)
		return
	}
	// The newest deployment of each app shown, in one call; without it the
	// rows just show no status.
	var latest []lastDeployment
	if len(apps) > 0 {
		names := url.Values{}
		for _, a := range apps {
			names.Add("app", a.Name)
		}
		_ = s.get(r, "/api/v1/deployments?"+names.Encode(), &latest)
	}
	last := make(map[string]*lastDeployment, len(latest))
	for i := range latest {
		last[latest[i].AppID] = &latest[i]
	}
	projects := make(map[string]string, len(av.Projects))
	for _, pr := range av.Projects {
		projects[pr.ID] = pr.Name
	}
	av.Rows = make([]appRow, len(apps))
	for i, a := range apps {
		av.Rows[i] = appRow{App: a, Project: projects[a.ProjectID], Status: "not deployed"}
		if d := last[a.ID]; d != nil {
			av.Rows[i].Last, av.Rows[i].Status = d, string(d.Status)
		}
	}
	v.Data = av
	s.show(w, r, v, "apps", f)
}

// appsOf reads page av.Page of the apps av's filters select and fills in
// the pager; a page past the end shows the last one.
func (s *Server) appsOf(r *http.Request, av *appsView) ([]berth.App, error) {
	read := func() ([]berth.App, error) {
		q := url.Values{"limit": {strconv.Itoa(appsPerPage)}, "offset": {strconv.Itoa((av.Page - 1) * appsPerPage)}}
		if av.Query != "" {
			q.Set("q", av.Query)
		}
		if av.Project != "" {
			q.Set("project", av.Project)
		}
		var apps []berth.App
		a, err := s.call(r, "GET", "/api/v1/apps?"+q.Encode(), nil, &apps, "")
		if err != nil {
			return nil, err
		}
		if av.Total, err = strconv.Atoi(a.header.Get("X-Total-Count")); err != nil {
			av.Total = len(apps)
		}
		return apps, nil
	}
	apps, err := read()
	if err != nil {
		return nil, err
	}
	av.Pages = max(1, (av.Total+appsPerPage-1)/appsPerPage)
	if av.Page > av.Pages {
		av.Page = av.Pages
		if apps, err = read(); err != nil {
			return nil, err
		}
	}
	if len(apps) > 0 {
		av.First = (av.Page-1)*appsPerPage + 1
		av.Last = av.First + len(apps) - 1
	}
	if av.Page > 1 {
		av.Prev = av.link(av.Page - 1)
	}
	if av.Page < av.Pages {
		av.Next = av.link(av.Page + 1)
	}
	return apps, nil
}

// appForm is the create-app form, refilled after a refusal.
type appForm struct {
	Name, Git, Ref, Image, Port string
	// Project is the chosen project; Projects those to choose from.
	Project    string
	Projects   []project
	Push       bool
	PushBranch string
}

func (s *Server) newAppPage(w http.ResponseWriter, r *http.Request, f *flash) {
	v := s.signedIn(w, r)
	if v == nil {
		return
	}
	v.Title, v.Nav = "New app", "apps"
	af := &appForm{Name: r.PostFormValue("name"), Git: r.PostFormValue("git"), Ref: r.PostFormValue("ref"),
		Image: r.PostFormValue("image"), Port: r.PostFormValue("port"), Project: r.FormValue("project"),
		Push: r.PostFormValue("push") != "", PushBranch: r.PostFormValue("push_branch")}
	_ = s.get(r, "/api/v1/projects", &af.Projects)
	if af.Project == "" {
		af.Project = berth.DefaultProject
	}
	v.Data = af
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
		if r.PostFormValue("push") != "" {
			// Code pushed to berth's hosted remote; other source fields
			// given as well are the API's to refuse.
			src["kind"] = string(berth.SourcePush)
			if b := strings.TrimSpace(r.PostFormValue("push_branch")); b != "" {
				src["ref"] = b
			}
		}
		if img := strings.TrimSpace(r.PostFormValue("image")); img != "" {
			src["image"] = img
		} else if g := strings.TrimSpace(r.PostFormValue("git")); g != "" {
			src["git"] = g
			if ref := strings.TrimSpace(r.PostFormValue("ref")); ref != "" {
				src["ref"] = ref
			}
		}
		body := map[string]any{"name": strings.TrimSpace(r.PostFormValue("name")), "source": src}
		if pr := r.PostFormValue("project"); pr != "" {
			body["project"] = pr
		}
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
	Releases    []release
	// LiveRelease is the ID of the release serving traffic, if any.
	LiveRelease string
	// Host is the domain form's value after a refusal.
	Host string
	// Form is the settings form; Saved says it was just saved.
	Form  settingsForm
	Saved bool
	// Log is the runtime log's last lines (or why there is none) and
	// Stream the URL that follows it.
	Log      []logLine
	LogError string
	Stream   string
	// Remote is the URL of a push app's hosted git remote.
	Remote string
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
	const w, h = 480, 160
	// At most one point per pixel column of the plot (its margins
	// aside): the API averages a week's 1,008 points down to that.
	most := strconv.Itoa(w - chartLeft - chartRight)
	if err := s.get(r, p("/api/v1/apps/%s/metrics?range=%s&points=%s", app, rng, most), &m); err != nil || len(m.Points) == 0 {
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
	return []template.HTML{
		Chart("CPU", "%", cpu, w, h),
		Chart("Memory", "B", mem, w, h),
		Chart("Network received", "B/s", rx, w, h),
		Chart("Network sent", "B/s", tx, w, h),
	}
}

// appTab begins a page of app {app} (one of its tabs): the signed-in view,
// titled with the app's name, and the app. When it returns false it has
// answered the request (sign-in redirect or error page).
func (s *Server) appTab(w http.ResponseWriter, r *http.Request) (*view, *berth.App, bool) {
	v := s.signedIn(w, r)
	if v == nil {
		return nil, nil, false
	}
	v.Nav = "apps"
	var a berth.App
	if err := s.get(r, p("/api/v1/apps/%s", r.PathValue("app")), &a); err != nil {
		s.errorPage(w, r, v, s.failed(r, err))
		return nil, nil, false
	}
	v.Title = a.Name
	return v, &a, true
}

func (s *Server) appPage(w http.ResponseWriter, r *http.Request, f *flash) {
	v, a, ok := s.appTab(w, r)
	if !ok {
		return
	}
	v.Title = a.Name
	av := appView{App: *a, Form: formOf(a), Saved: r.URL.Query().Get("done") == "settings"}
	if f != nil && r.Method == http.MethodPost {
		// A refused form shows its error next to it, with what was typed.
		v.ErrorAt = appForms[path.Base(r.URL.Path)]
		switch path.Base(r.URL.Path) {
		case "settings":
			av.Form = postedForm(r)
		case "domains":
			av.Host = r.PostFormValue("host")
		}
	}
	if a.Source.Kind == berth.SourcePush {
		scheme := "http"
		if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
			scheme = "https"
		}
		av.Remote = scheme + "://" + r.Host + "/git/" + a.Name + ".git"
	}
	var st appStatus
	if err := s.get(r, p("/api/v1/apps/%s/status", a.Name), &st); err != nil {
		av.StatusError = s.failed(r, err).Error
	} else {
		av.Status = &st
		if st.Release != nil {
			av.LiveRelease = st.Release.ID
		}
	}
	_ = s.get(r, p("/api/v1/apps/%s/domains", a.Name), &av.Domains)
	_ = s.get(r, p("/api/v1/apps/%s/deployments?limit=20", a.Name), &av.Deployments)
	_ = s.get(r, p("/api/v1/apps/%s/releases?limit=20", a.Name), &av.Releases)
	if av.LiveRelease != "" {
		av.Log, av.LogError, av.Stream = s.runtimeLog(r, a.Name)
	}
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
	v, a, ok := s.appTab(w, r)
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
	// Lines are the last buildLogTail lines of the log; Hidden counts
	// the earlier ones, which Full (the whole log as text) still has.
	Lines  []logLine
	Hidden int
	Full   string
	// Stream follows the log from the line after the last one shown.
	Stream string
}

// buildLogTail is how many of a build log's last lines the deployment
// page shows: a long log would make the page too heavy to load.
const buildLogTail = 500

func (s *Server) deploymentPage(w http.ResponseWriter, r *http.Request, f *flash) {
	v, a, ok := s.appTab(w, r)
	if !ok {
		return
	}
	var d berth.Deployment
	if err := s.get(r, p("/api/v1/apps/%s/deployments/%s", a.Name, r.PathValue("n")), &d); err != nil {
		s.errorPage(w, r, v, s.failed(r, err))
		return
	}
	v.Title = fmt.Sprintf("%s · deployment #%d", a.Name, d.Number)
	dv := deploymentView{App: *a, Deployment: d, Full: p("/api/v1/apps/%s/deployments/%s/log", a.Name, d.ID)}
	ans, err := s.call(r, "GET", dv.Full, nil, nil, "")
	if err != nil {
		s.errorPage(w, r, v, s.failed(r, err))
		return
	}
	// Keep the last buildLogTail lines, and at most twice that at once.
	var total int
	var tail []string
	sc := bufio.NewScanner(&ans.body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		total++
		if tail = append(tail, sc.Text()); len(tail) == 2*buildLogTail {
			tail = append(tail[:0], tail[buildLogTail:]...)
		}
	}
	tail = tail[max(0, len(tail)-buildLogTail):]
	dv.Hidden = total - len(tail)
	for i, text := range tail {
		dv.Lines = append(dv.Lines, logLine{Seq: int64(dv.Hidden + i + 1), Spans: ansiSpans(text)})
	}
	dv.Stream = dv.Full + "?after=" + strconv.Itoa(total)
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
	// AcceptedAt is set once it was used: it is no longer pending.
	AcceptedAt *time.Time `json:"accepted_at"`
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
	// Projects are the team's projects, for the grants of developers and
	// viewers; ProjectNames names them by ID.
	Projects     []project
	ProjectNames map[string]string
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
	mv.Invitations = slices.DeleteFunc(mv.Invitations, func(in invitation) bool { return in.AcceptedAt != nil })
	_ = s.get(r, "/api/v1/projects", &mv.Projects)
	mv.ProjectNames = make(map[string]string, len(mv.Projects))
	for _, pr := range mv.Projects {
		mv.ProjectNames[pr.ID] = pr.Name
	}
	if f != nil {
		mv.Invited, _ = f.Secret.(*invited)
	}
	v.Data = mv
	s.show(w, r, v, "members", f)
}

// invite creates an invitation; the members page it redirects to shows
// its secret, once.
func (s *Server) invite(w http.ResponseWriter, r *http.Request) {
	s.act(w, r, s.membersPage, func() (string, error) {
		var in invited
		body := map[string]string{"email": strings.TrimSpace(r.PostFormValue("email")), "role": r.PostFormValue("role")}
		if err := s.send(r, "POST", "/api/v1/invitations", body, &in); err != nil {
			return "", err
		}
		return s.flashTo(w, r, "/members", &flash{Secret: &in, Notice: "Invitation created."}), nil
	})
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

// createToken creates an API token; the tokens page it redirects to
// shows its secret, once.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	s.act(w, r, s.tokensPage, func() (string, error) {
		var tc tokenCreated
		body := map[string]any{"name": strings.TrimSpace(r.PostFormValue("name")), "scopes": r.PostForm["scopes"]}
		if e := strings.TrimSpace(r.PostFormValue("expires_in")); e != "" {
			body["expires_in"] = e
		}
		if err := s.send(r, "POST", "/api/v1/tokens", body, &tc); err != nil {
			return "", err
		}
		return s.flashTo(w, r, "/tokens", &flash{Secret: &tc, Notice: "Token created."}), nil
	})
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
	// tabs is the argument of the "apptabs" template: the app and its current tab.
	"tabs": func(app, current string) map[string]string { return map[string]string{"name": app, "current": current} },
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
	"in":     slices.Contains[[]string, string],
	"can":    func(m *me, s berth.Scope) bool { return m != nil && berth.Allows(m.Scopes, s) },
	"qs":     url.QueryEscape,
	"active": func(st berth.Status) bool { return st.Active() },
}
