package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/engine"
)

// Client is a typed client of the API. Errors from the server come back as
// *berth.Error with the kind and message the server sent.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client of the server at baseURL (such as
// "https://berth.example.com") that authenticates with token. A nil
// httpClient means a plain http.Client; it must not have a timeout that
// would cut log streams.
func NewClient(baseURL, token string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, hc: httpClient}
}

// appPath returns the path of app name, followed by more path elements,
// each escaped.
func appPath(name string, more ...string) string {
	p := "/api/v1/apps/" + url.PathEscape(name)
	for _, m := range more {
		p += "/" + url.PathEscape(m)
	}
	return p
}

// request sends a request and returns the response when its status is 2xx;
// any other status is decoded into a *berth.Error.
func (c *Client) request(ctx context.Context, op, method, path string, body io.Reader, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, berth.Wrap(op, berth.Invalid, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, berth.Wrap(op, berth.Unavailable, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, decodeError(op, resp)
}

// do sends in (when not nil) as JSON and decodes the answer into out (when
// not nil).
func (c *Client) do(ctx context.Context, op, method, path string, in, out any) error {
	var body io.Reader
	h := http.Header{}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return berth.Wrap(op, berth.Internal, fmt.Errorf("encode request: %w", err))
		}
		body = bytes.NewReader(b)
		h.Set("Content-Type", "application/json")
	}
	resp, err := c.request(ctx, op, method, path, body, h)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return berth.Wrap(op, berth.Internal, fmt.Errorf("decode response: %w", err))
	}
	return nil
}

// kindOf maps an HTTP status back to an error kind, for answers that are not
// problem documents (a proxy's 502, a mux's 404).
func kindOf(status int) berth.Kind {
	switch {
	case status == http.StatusBadRequest, status == http.StatusRequestEntityTooLarge, status == http.StatusUnprocessableEntity:
		return berth.Invalid
	case status == http.StatusNotFound, status == http.StatusMethodNotAllowed:
		return berth.NotFound
	case status == http.StatusConflict:
		return berth.Conflict
	case status == http.StatusUnauthorized:
		return berth.Unauthorized
	case status == http.StatusForbidden:
		return berth.Forbidden
	case status == http.StatusBadGateway, status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
		return berth.Unavailable
	}
	return berth.Internal
}

// decodeError turns an error answer into a *berth.Error.
func decodeError(op string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &berth.Error{Op: op, Kind: kindOf(resp.StatusCode)}
	var p Problem
	if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "json") && json.Unmarshal(b, &p) == nil && p.Status != 0 {
		if k, ok := strings.CutPrefix(p.Type, ProblemTypePrefix); ok && statusOf(berth.Kind(k)) == resp.StatusCode {
			e.Kind = berth.Kind(k)
		}
		e.Msg = p.Detail
	}
	if e.Msg == "" {
		line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		e.Msg = clip(strings.TrimSpace(line))
	}
	if e.Msg == "" {
		e.Msg = fmt.Sprintf("server answered %s", resp.Status)
	}
	return e
}

// Healthz checks that the server and its store answer.
func (c *Client) Healthz(ctx context.Context) error {
	return c.do(ctx, "check health", "GET", "/healthz", nil, nil)
}

// OpenAPI returns the server's OpenAPI document.
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	var doc json.RawMessage
	err := c.do(ctx, "get openapi document", "GET", "/api/v1/openapi.json", nil, &doc)
	return doc, err
}

// Me returns who the token belongs to.
func (c *Client) Me(ctx context.Context) (*Me, error) {
	var me Me
	if err := c.do(ctx, "who am i", "GET", "/api/v1/me", nil, &me); err != nil {
		return nil, err
	}
	return &me, nil
}

// Apps lists the team's apps.
func (c *Client) Apps(ctx context.Context) ([]berth.App, error) {
	var out []berth.App
	err := c.do(ctx, "list apps", "GET", "/api/v1/apps", nil, &out)
	return out, err
}

// AppQuery selects and pages apps for FindApps; zero fields select
// everything.
type AppQuery struct {
	Query   string // a part of the name
	Project string // a project's name or ID
	Limit   int    // apps per page (at most 1000); 0: all of them
	Offset  int
}

// FindApps lists the apps q selects, sorted by name, and how many it
// selects over every page.
func (c *Client) FindApps(ctx context.Context, q AppQuery) (apps []berth.App, total int, err error) {
	const op = "list apps"
	v := url.Values{}
	if q.Query != "" {
		v.Set("q", q.Query)
	}
	if q.Project != "" {
		v.Set("project", q.Project)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Offset > 0 {
		v.Set("offset", strconv.Itoa(q.Offset))
	}
	path := "/api/v1/apps"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	resp, err := c.request(ctx, op, "GET", path, nil, nil)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&apps); err != nil {
		return nil, 0, berth.Wrap(op, berth.Internal, fmt.Errorf("decode response: %w", err))
	}
	total, err = strconv.Atoi(resp.Header.Get(TotalCountHeader))
	if err != nil {
		total = len(apps) // an older server: no count
	}
	return apps, total, nil
}

// CreateApp creates an app from the settings of a (its ID, team and times
// are ignored) and returns it as stored, defaults filled.
func (c *Client) CreateApp(ctx context.Context, a *berth.App) (*berth.App, error) {
	var out berth.App
	if err := c.do(ctx, "create app", "POST", "/api/v1/apps", inputOf(a), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// App returns the app of that name.
func (c *Client) App(ctx context.Context, name string) (*berth.App, error) {
	var out berth.App
	if err := c.do(ctx, "show app", "GET", appPath(name), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AppPatch changes some settings of an app: nil fields stay as they are.
type AppPatch struct {
	Source    *SourcePatch    `json:"source,omitempty"`
	Build     *BuildPatch     `json:"build,omitempty"`
	Port      *int            `json:"port,omitempty"`
	Replicas  *int            `json:"replicas,omitempty"`
	Resources *ResourcesPatch `json:"resources,omitempty"`
	Health    *HealthPatch    `json:"health,omitempty"`
	Volumes   *[]berth.Volume `json:"volumes,omitempty"` // replaces every volume
}

// SourcePatch changes an app's source.
type SourcePatch struct {
	Kind  *berth.SourceKind `json:"kind,omitempty"`
	Git   *string           `json:"git,omitempty"`
	Ref   *string           `json:"ref,omitempty"`
	Image *string           `json:"image,omitempty"`
}

// BuildPatch changes how an app is built. In Args, a nil value removes the
// build arg.
type BuildPatch struct {
	Dockerfile *string            `json:"dockerfile,omitempty"`
	Context    *string            `json:"context,omitempty"`
	Args       map[string]*string `json:"args,omitempty"`
	Target     *string            `json:"target,omitempty"`
}

// ResourcesPatch changes an app's resource limits.
type ResourcesPatch struct {
	MemoryMB *int64   `json:"memory_mb,omitempty"`
	CPUs     *float64 `json:"cpus,omitempty"`
}

// HealthPatch changes an app's health check. In JSON it has the shape of
// berth.HealthCheck (durations as strings) with only the fields that are set.
type HealthPatch struct {
	Path      *string
	Interval  *time.Duration
	Timeout   *time.Duration
	Threshold *int
	Deadline  *time.Duration
}

// MarshalJSON encodes the set fields as berth.HealthCheck encodes them.
func (h HealthPatch) MarshalJSON() ([]byte, error) {
	var full berth.HealthCheck
	set := map[string]bool{}
	if h.Path != nil {
		full.Path, set["path"] = *h.Path, true
	}
	if h.Interval != nil {
		full.Interval, set["interval"] = *h.Interval, true
	}
	if h.Timeout != nil {
		full.Timeout, set["timeout"] = *h.Timeout, true
	}
	if h.Threshold != nil {
		full.Threshold, set["threshold"] = *h.Threshold, true
	}
	if h.Deadline != nil {
		full.Deadline, set["deadline"] = *h.Deadline, true
	}
	b, err := json.Marshal(full)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, err
	}
	for k := range fields {
		if !set[k] {
			delete(fields, k)
		}
	}
	return json.Marshal(fields)
}

// UpdateApp changes the settings of app name present in patch.
func (c *Client) UpdateApp(ctx context.Context, name string, patch AppPatch) (*berth.App, error) {
	var out berth.App
	if err := c.do(ctx, "update app", "PATCH", appPath(name), patch, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteApp stops and deletes an app; its named volumes too when volumes
// is set.
func (c *Client) DeleteApp(ctx context.Context, name string, volumes bool) error {
	path := appPath(name)
	if volumes {
		path += "?volumes=true"
	}
	return c.do(ctx, "delete app", "DELETE", path, nil, nil)
}

// Status reports what runs for an app.
func (c *Client) Status(ctx context.Context, name string) (*engine.AppStatus, error) {
	var out engine.AppStatus
	if err := c.do(ctx, "app status", "GET", appPath(name, "status"), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Domains lists an app's domains with their certificates.
func (c *Client) Domains(ctx context.Context, app string) ([]engine.DomainStatus, error) {
	var out []engine.DomainStatus
	err := c.do(ctx, "list domains", "GET", appPath(app, "domains"), nil, &out)
	return out, err
}

// AddDomain routes host to an app.
func (c *Client) AddDomain(ctx context.Context, app, host string) (*berth.Domain, error) {
	var out berth.Domain
	if err := c.do(ctx, "add domain", "POST", appPath(app, "domains"), DomainRequest{Host: host}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveDomain stops routing host to an app.
func (c *Client) RemoveDomain(ctx context.Context, app, host string) error {
	return c.do(ctx, "remove domain", "DELETE", appPath(app, "domains", host), nil, nil)
}

// SetCertificate installs a custom certificate (a PEM chain, leaf first) and
// its PEM private key for one of an app's domains, in place of an ACME one,
// and returns the domain with its certificate as the proxy now reports it.
func (c *Client) SetCertificate(ctx context.Context, app, host string, certPEM, keyPEM []byte) (*engine.DomainStatus, error) {
	var out engine.DomainStatus
	req := CertificateRequest{CertPEM: string(certPEM), KeyPEM: string(keyPEM)}
	if err := c.do(ctx, "set certificate", "PUT", appPath(app, "domains", host, "certificate"), req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveCertificate removes the custom certificate of one of an app's
// domains; ACME takes over again where it can.
func (c *Client) RemoveCertificate(ctx context.Context, app, host string) error {
	return c.do(ctx, "remove certificate", "DELETE", appPath(app, "domains", host, "certificate"), nil, nil)
}

// Env lists an app's env vars (values redacted without read-secrets).
func (c *Client) Env(ctx context.Context, app string) ([]EnvVar, error) {
	var out []EnvVar
	err := c.do(ctx, "list env", "GET", appPath(app, "env"), nil, &out)
	return out, err
}

// UpdateEnv sets and unsets env vars of an app, and deploys it when asked.
func (c *Client) UpdateEnv(ctx context.Context, app string, patch EnvPatch) (*EnvResult, error) {
	var out EnvResult
	if err := c.do(ctx, "update env", "PATCH", appPath(app, "env"), patch, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeployKey returns the public half of an app's deploy key; NotFound when
// it has none.
func (c *Client) DeployKey(ctx context.Context, app string) (*berth.DeployKey, error) {
	var out berth.DeployKey
	if err := c.do(ctx, "get deploy key", "GET", appPath(app, "deploy-key"), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateDeployKey generates an app's deploy key and returns its public
// half; rotate replaces an existing one (a Conflict otherwise).
func (c *Client) CreateDeployKey(ctx context.Context, app string, rotate bool) (*berth.DeployKey, error) {
	var out berth.DeployKey
	if err := c.do(ctx, "create deploy key", "POST", appPath(app, "deploy-key"), DeployKeyRequest{Rotate: rotate}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteDeployKey deletes an app's deploy key.
func (c *Client) DeleteDeployKey(ctx context.Context, app string) error {
	return c.do(ctx, "delete deploy key", "DELETE", appPath(app, "deploy-key"), nil, nil)
}

// GitCredentials says whether an app has an access token.
func (c *Client) GitCredentials(ctx context.Context, app string) (*berth.GitCredentials, error) {
	var out berth.GitCredentials
	if err := c.do(ctx, "get git credentials", "GET", appPath(app, "git-credentials"), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetGitCredentials sets or replaces an app's access token.
func (c *Client) SetGitCredentials(ctx context.Context, app string, req GitCredentialsRequest) (*berth.GitCredentials, error) {
	var out berth.GitCredentials
	if err := c.do(ctx, "set git credentials", "PUT", appPath(app, "git-credentials"), req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteGitCredentials deletes an app's access token.
func (c *Client) DeleteGitCredentials(ctx context.Context, app string) error {
	return c.do(ctx, "delete git credentials", "DELETE", appPath(app, "git-credentials"), nil, nil)
}

// HostKeys lists the ssh host keys an app trusts.
func (c *Client) HostKeys(ctx context.Context, app string) ([]berth.HostKey, error) {
	var out []berth.HostKey
	err := c.do(ctx, "list host keys", "GET", appPath(app, "host-keys"), nil, &out)
	return out, err
}

// SetHostKeys replaces the ssh host keys an app trusts with known_hosts
// lines.
func (c *Client) SetHostKeys(ctx context.Context, app, knownHosts string) ([]berth.HostKey, error) {
	var out []berth.HostKey
	err := c.do(ctx, "set host keys", "PUT", appPath(app, "host-keys"), HostKeysRequest{KnownHosts: knownHosts}, &out)
	return out, err
}

// ResetHostKeys forgets the ssh host keys an app trusts: the next fetch
// trusts each host on first use again.
func (c *Client) ResetHostKeys(ctx context.Context, app string) error {
	return c.do(ctx, "reset host keys", "DELETE", appPath(app, "host-keys"), nil, nil)
}

// Deployments lists an app's deployments, newest first; limit 0 means the
// server's default.
func (c *Client) Deployments(ctx context.Context, app string, limit int) ([]berth.Deployment, error) {
	p := appPath(app, "deployments")
	if limit > 0 {
		p += "?limit=" + strconv.Itoa(limit)
	}
	var out []berth.Deployment
	err := c.do(ctx, "list deployments", "GET", p, nil, &out)
	return out, err
}

// Deploy starts a deployment of a git or image app.
func (c *Client) Deploy(ctx context.Context, app string, req DeployRequest) (*berth.Deployment, error) {
	var out berth.Deployment
	if err := c.do(ctx, "deploy", "POST", appPath(app, "deployments"), req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeployUpload starts a deployment of an upload app from a build context:
// a tar archive, gzipped when gzipped is set.
func (c *Client) DeployUpload(ctx context.Context, app string, archive io.Reader, gzipped bool) (*berth.Deployment, error) {
	const op = "deploy"
	h := http.Header{}
	h.Set("Content-Type", "application/x-tar")
	if gzipped {
		h.Set("Content-Type", "application/gzip")
	}
	resp, err := c.request(ctx, op, "POST", appPath(app, "deployments"), archive, h)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out berth.Deployment
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, berth.Wrap(op, berth.Internal, fmt.Errorf("decode response: %w", err))
	}
	return &out, nil
}

// Deployment returns deployment id (an ID or a number) of an app.
func (c *Client) Deployment(ctx context.Context, app, id string) (*berth.Deployment, error) {
	var out berth.Deployment
	if err := c.do(ctx, "show deployment", "GET", appPath(app, "deployments", id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CancelDeployment cancels deployment id of an app.
func (c *Client) CancelDeployment(ctx context.Context, app, id string) (*berth.Deployment, error) {
	var out berth.Deployment
	if err := c.do(ctx, "cancel deployment", "POST", appPath(app, "deployments", id, "cancel"), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeploymentLog copies the stored log of a deployment to w as text.
func (c *Client) DeploymentLog(ctx context.Context, app, id string, w io.Writer) error {
	const op = "deployment log"
	h := http.Header{"Accept": {"text/plain"}}
	resp, err := c.request(ctx, op, "GET", appPath(app, "deployments", id, "log"), nil, h)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return berth.Wrap(op, berth.Unavailable, err)
	}
	return nil
}

// FollowDeployment streams a deployment's log until the deployment is no
// longer active: onLine gets each log line once, onStatus (when not nil)
// each status the deployment goes through. It returns the deployment as it
// ended. A dropped connection is resumed where it stopped.
func (c *Client) FollowDeployment(ctx context.Context, app, id string, onLine func(berth.LogLine), onStatus func(*berth.Deployment)) (*berth.Deployment, error) {
	const op = "follow deployment"
	var lastSeq int64
	failures := 0
	for {
		h := http.Header{"Accept": {"text/event-stream"}}
		if lastSeq > 0 {
			h.Set("Last-Event-ID", strconv.FormatInt(lastSeq, 10))
		}
		resp, err := c.request(ctx, op, "GET", appPath(app, "deployments", id, "log"), nil, h)
		if err != nil && !berth.IsKind(err, berth.Unavailable) {
			return nil, err
		}
		var end *berth.Deployment
		if err == nil {
			err = readEvents(resp.Body, func(ev event) error {
				switch ev.name {
				case "log":
					var l berth.LogLine
					if err := json.Unmarshal(ev.data, &l); err != nil {
						return fmt.Errorf("decode log event: %w", err)
					}
					if l.Seq > lastSeq {
						lastSeq = l.Seq
						onLine(l)
					}
					failures = 0
				case "status", "end":
					var d berth.Deployment
					if err := json.Unmarshal(ev.data, &d); err != nil {
						return fmt.Errorf("decode %s event: %w", ev.name, err)
					}
					if ev.name == "end" {
						end = &d
						return errEndOfStream
					}
					if onStatus != nil {
						onStatus(&d)
					}
				}
				return nil
			})
			resp.Body.Close()
		}
		if end != nil {
			return end, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if failures++; failures > 5 {
			return nil, berth.Wrap(op, berth.Unavailable, fmt.Errorf("log stream of deployment %s: %w", id, err))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(failures) * 500 * time.Millisecond):
		}
	}
}

// Releases lists an app's releases, newest first; limit 0 means the server's
// default. Env values are empty unless the token has read-secrets.
func (c *Client) Releases(ctx context.Context, app string, limit int) ([]Release, error) {
	p := appPath(app, "releases")
	if limit > 0 {
		p += "?limit=" + strconv.Itoa(limit)
	}
	var out []Release
	err := c.do(ctx, "list releases", "GET", p, nil, &out)
	return out, err
}

// Rollback starts a deployment of an earlier release: an ID, a number, or ""
// for the release before the live one.
func (c *Client) Rollback(ctx context.Context, app, release string) (*berth.Deployment, error) {
	var out berth.Deployment
	if err := c.do(ctx, "roll back", "POST", appPath(app, "rollback"), RollbackRequest{Release: release}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// LogsOptions selects an app's runtime logs: the last Tail lines (-1 for
// all, 0 for the server's default) and, with Follow, new lines until ctx
// ends.
type LogsOptions struct {
	Tail   int
	Follow bool
}

// Logs copies an app's runtime logs to w as they arrive.
func (c *Client) Logs(ctx context.Context, app string, opts LogsOptions, w io.Writer) error {
	const op = "logs"
	q := url.Values{}
	switch {
	case opts.Tail < 0:
		q.Set("tail", "all")
	case opts.Tail > 0:
		q.Set("tail", strconv.Itoa(opts.Tail))
	}
	if opts.Follow {
		q.Set("follow", "true")
	}
	p := appPath(app, "logs")
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	resp, err := c.request(ctx, op, "GET", p, nil, http.Header{"Accept": {"text/plain"}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil && ctx.Err() == nil {
		return berth.Wrap(op, berth.Unavailable, err)
	}
	return nil
}

// event is one Server-Sent Event.
type event struct {
	name string
	id   string
	data []byte
}

var errEndOfStream = errors.New("end of stream")

// readEvents reads Server-Sent Events from r and calls fn for each, until r
// ends or fn returns an error. errEndOfStream from fn ends it without error.
func readEvents(r io.Reader, fn func(event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	var ev event
	var data [][]byte
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if data != nil {
				ev.data = bytes.Join(data, []byte{'\n'})
				if ev.name == "" {
					ev.name = "message"
				}
				if err := fn(ev); err != nil {
					if errors.Is(err, errEndOfStream) {
						return nil
					}
					return err
				}
			}
			ev, data = event{}, nil
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte{':'})
		value = bytes.TrimPrefix(value, []byte{' '})
		switch string(field) {
		case "event":
			ev.name = string(value)
		case "id":
			ev.id = string(value)
		case "data":
			data = append(data, bytes.Clone(value))
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}

// Teams lists the caller's teams and their role in each.
func (c *Client) Teams(ctx context.Context) ([]berth.Membership, error) {
	var out []berth.Membership
	err := c.do(ctx, "list teams", "GET", "/api/v1/teams", nil, &out)
	return out, err
}

// CreateTeam creates a team owned by the caller; the answer holds a token
// in it, shown once.
func (c *Client) CreateTeam(ctx context.Context, name string) (*TeamCreated, error) {
	var out TeamCreated
	if err := c.do(ctx, "create team", "POST", "/api/v1/teams", TeamRequest{Name: name}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Team returns the token's team and the caller's role in it.
func (c *Client) Team(ctx context.Context) (*TeamInfo, error) {
	var out TeamInfo
	if err := c.do(ctx, "show team", "GET", "/api/v1/team", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Members lists the team's members.
func (c *Client) Members(ctx context.Context) ([]berth.Member, error) {
	var out []berth.Member
	err := c.do(ctx, "list members", "GET", "/api/v1/members", nil, &out)
	return out, err
}

// SetMemberRole changes a member's role.
func (c *Client) SetMemberRole(ctx context.Context, userID string, role berth.Role) (*berth.Member, error) {
	var out berth.Member
	if err := c.do(ctx, "set role", "PATCH", "/api/v1/members/"+url.PathEscape(userID), RoleRequest{Role: role}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveMember removes a member from the team, with their tokens in it.
func (c *Client) RemoveMember(ctx context.Context, userID string) error {
	return c.do(ctx, "remove member", "DELETE", "/api/v1/members/"+url.PathEscape(userID), nil, nil)
}

// SetMemberProjects narrows a developer or viewer to projects (names or
// IDs); none gives back every project.
func (c *Client) SetMemberProjects(ctx context.Context, userID string, projects []string) (*berth.Member, error) {
	var out berth.Member
	if projects == nil {
		projects = []string{}
	}
	if err := c.do(ctx, "set projects", "PUT", "/api/v1/members/"+url.PathEscape(userID)+"/projects", ProjectsRequest{Projects: projects}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Projects lists the projects the caller sees, with their app counts.
func (c *Client) Projects(ctx context.Context) ([]Project, error) {
	var out []Project
	err := c.do(ctx, "list projects", "GET", "/api/v1/projects", nil, &out)
	return out, err
}

// CreateProject creates a project.
func (c *Client) CreateProject(ctx context.Context, name string) (*berth.Project, error) {
	var out berth.Project
	if err := c.do(ctx, "create project", "POST", "/api/v1/projects", ProjectRequest{Name: name}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteProject deletes an empty project (name or ID).
func (c *Client) DeleteProject(ctx context.Context, project string) error {
	return c.do(ctx, "delete project", "DELETE", "/api/v1/projects/"+url.PathEscape(project), nil, nil)
}

// Invitations lists the team's invitations.
func (c *Client) Invitations(ctx context.Context) ([]berth.Invitation, error) {
	var out []berth.Invitation
	err := c.do(ctx, "list invitations", "GET", "/api/v1/invitations", nil, &out)
	return out, err
}

// Invite invites someone by e-mail; the answer's secret is shown once.
func (c *Client) Invite(ctx context.Context, in InvitationRequest) (*InvitationCreated, error) {
	var out InvitationCreated
	if err := c.do(ctx, "invite", "POST", "/api/v1/invitations", in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeInvitation revokes an invitation.
func (c *Client) RevokeInvitation(ctx context.Context, id string) error {
	return c.do(ctx, "revoke invitation", "DELETE", "/api/v1/invitations/"+url.PathEscape(id), nil, nil)
}

// AcceptInvitation accepts an invitation: as the client's user when it has
// a token, else as a new account named in.Name.
func (c *Client) AcceptInvitation(ctx context.Context, in AcceptRequest) (*Accepted, error) {
	var out Accepted
	if err := c.do(ctx, "accept invitation", "POST", "/api/v1/invitations/accept", in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Tokens lists the caller's tokens (an admin's: the team's).
func (c *Client) Tokens(ctx context.Context) ([]berth.Token, error) {
	var out []berth.Token
	err := c.do(ctx, "list tokens", "GET", "/api/v1/tokens", nil, &out)
	return out, err
}

// CreateToken creates a token; the answer's secret is shown once.
func (c *Client) CreateToken(ctx context.Context, in TokenRequest) (*TokenCreated, error) {
	var out TokenCreated
	if err := c.do(ctx, "create token", "POST", "/api/v1/tokens", in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeToken revokes a token.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.do(ctx, "revoke token", "DELETE", "/api/v1/tokens/"+url.PathEscape(id), nil, nil)
}

// AuditQuery selects audit events (see GET /api/v1/audit).
type AuditQuery struct {
	Since, Until    string // RFC 3339 time or a duration back from now
	Action, ActorID string
	Outcome         berth.Outcome
	Limit           int
}

func (q AuditQuery) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"since": q.Since, "until": q.Until, "action": q.Action, "actor": q.ActorID, "outcome": string(q.Outcome)} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// Audit returns the team's audit events, newest first.
func (c *Client) Audit(ctx context.Context, q AuditQuery) ([]berth.AuditEvent, error) {
	var out []berth.AuditEvent
	err := c.do(ctx, "list audit events", "GET", "/api/v1/audit?"+q.values().Encode(), nil, &out)
	return out, err
}

// AuditStream copies the team's audit events as JSON lines to w, as the
// server streams them.
func (c *Client) AuditStream(ctx context.Context, q AuditQuery, w io.Writer) error {
	v := q.values()
	v.Set("format", "jsonl")
	resp, err := c.request(ctx, "stream audit events", "GET", "/api/v1/audit?"+v.Encode(), nil, http.Header{"Accept": {"application/jsonl"}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return berth.Wrap("stream audit events", berth.Unavailable, err)
	}
	return nil
}
