package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/git"
)

// appInput is what a client may set on an app: the body of POST
// /api/v1/apps, and the document a PATCH is merged into.
type appInput struct {
	Name      string            `json:"name"`
	Source    berth.Source      `json:"source"`
	Build     berth.BuildConfig `json:"build"`
	Port      int               `json:"port"`
	Replicas  int               `json:"replicas"`
	Resources berth.Resources   `json:"resources"`
	Health    berth.HealthCheck `json:"health"`
	Volumes   []berth.Volume    `json:"volumes"`
	// Project is the app's project, by name or ID; it is chosen when the
	// app is created (default: the team's default project) and cannot
	// change.
	Project string `json:"project,omitempty"`
}

func inputOf(a *berth.App) appInput {
	return appInput{Name: a.Name, Project: a.ProjectID, Source: a.Source, Build: a.Build, Port: a.Port, Replicas: a.Replicas,
		Resources: a.Resources, Health: a.Health, Volumes: a.Volumes}
}

// apply copies the settings of in onto a.
func (in appInput) apply(a *berth.App) {
	a.Name, a.Source, a.Build, a.Port, a.Replicas = in.Name, in.Source, in.Build, in.Port, in.Replicas
	a.Resources, a.Health, a.Volumes = in.Resources, in.Health, in.Volumes
}

// loadApp finds the app named in the path within the caller's team. An app
// of another team, or outside the projects the caller is narrowed to, is
// not found, exactly like one that does not exist.
func (s *Server) loadApp(r *http.Request, p *auth.Principal) (*berth.App, error) {
	return s.findApp(r.Context(), p, r.PathValue("app"))
}

// findApp finds app name within p's team and projects, as loadApp does.
func (s *Server) findApp(ctx context.Context, p *auth.Principal, name string) (*berth.App, error) {
	notFound := berth.E("find app", berth.NotFound, "no app named %q", clip(name))
	if berth.ValidName(name) != nil {
		return nil, notFound
	}
	a, err := s.store.App(ctx, p.Team.ID, name)
	if berth.IsKind(err, berth.NotFound) || err == nil && !sees(p, a.ProjectID) {
		return nil, notFound
	}
	if err != nil {
		return nil, fmt.Errorf("find app %s: %w", name, err)
	}
	return a, nil
}

// checkApp fills the defaults of a and validates it, including its Git URL
// and the address it points at: a host that is or resolves to a loopback,
// private or link-local address is refused unless the server allows private
// egress. A name that does not resolve now is accepted: the fetch checks
// the address again when it connects.
func (s *Server) checkApp(ctx context.Context, a *berth.App) error {
	a.SetDefaults()
	if err := a.Validate(); err != nil {
		return err
	}
	src := a.Source
	if (src.Kind != berth.SourceGit && src.Git != "") || (src.Kind != berth.SourceGit && src.Kind != berth.SourcePush && src.Ref != "") ||
		(src.Kind != berth.SourceImage && src.Image != "") {
		return berth.E("validate app", berth.Invalid, "a %s source takes no other source fields (git, ref, image)", src.Kind)
	}
	if a.Source.Kind == berth.SourceGit {
		if err := git.CheckURL(a.Source.Git, s.localGit); err != nil {
			if berth.IsKind(err, berth.Invalid) {
				return err
			}
			return berth.E("validate app", berth.Invalid, "git URL: %v", err)
		}
		if !strings.HasPrefix(a.Source.Git, "/") {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := s.egress.Check(rctx, a.Source.Git)
			cancel()
			if berth.IsKind(err, berth.Invalid) {
				return err
			}
		}
	}
	return nil
}

// TotalCountHeader is the header of a paged list that says how many items
// the request's filters select over every page.
const TotalCountHeader = "X-Total-Count"

// listApps lists the apps the caller sees, sorted by name: all of them, or
// the page and filters of the query (limit, offset, q: a part of the
// name, project: a project's name or ID). X-Total-Count says how many
// apps the filters select over every page.
func (s *Server) listApps(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	f, err := s.appFilter(r, p)
	if err != nil {
		return err
	}
	apps, total, err := s.store.FindApps(r.Context(), p.Team.ID, f)
	if err != nil {
		return fmt.Errorf("list apps: %w", err)
	}
	if apps == nil {
		apps = []berth.App{}
	}
	w.Header().Set(TotalCountHeader, strconv.Itoa(total))
	return writeJSON(w, http.StatusOK, apps)
}

// appFilter reads the filters and the page of GET /api/v1/apps. Without a
// limit the list has every app.
func (s *Server) appFilter(r *http.Request, p *auth.Principal) (berth.AppFilter, error) {
	const op = "read query"
	q := r.URL.Query()
	f := berth.AppFilter{Visible: p.Projects}
	if q.Has("limit") {
		n, err := limitParam(r)
		if err != nil {
			return f, err
		}
		f.Limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1_000_000 {
			return f, berth.E(op, berth.Invalid, "offset must be a number from 0 to 1000000")
		}
		f.Offset = n
	}
	f.Query = strings.TrimSpace(q.Get("q"))
	if len(f.Query) > 40 || !utf8.ValidString(f.Query) {
		return f, berth.E(op, berth.Invalid, "q: give at most 40 characters of an app's name")
	}
	if v := strings.TrimSpace(q.Get("project")); v != "" {
		pr, err := s.findProject(r, p, v)
		if err != nil {
			return f, err
		}
		f.Project = pr.ID
	}
	return f, nil
}

func (s *Server) createApp(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in appInput
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	now := s.now().UTC()
	a := &berth.App{ID: berth.NewID("app"), TeamID: p.Team.ID, CreatedAt: now, UpdatedAt: now}
	in.apply(a)
	if err := s.checkApp(r.Context(), a); err != nil {
		return err
	}
	// A member narrowed to some projects names one of them; everyone else
	// may leave the project out and get the default one.
	switch {
	case in.Project != "":
		pr, err := s.findProject(r, p, in.Project)
		if err != nil {
			return err
		}
		a.ProjectID = pr.ID
	case p.Projects != nil:
		pr, err := s.findProject(r, p, berth.DefaultProject)
		if err != nil {
			return berth.E("create app", berth.Invalid, "name the project of the app: you can create apps in %d project(s)", len(p.Projects))
		}
		a.ProjectID = pr.ID
	}
	if err := s.store.CreateApp(r.Context(), a); err != nil {
		if berth.IsKind(err, berth.Conflict) {
			return berth.E("create app", berth.Conflict, "an app named %q already exists", a.Name)
		}
		return fmt.Errorf("create app: %w", err)
	}
	w.Header().Set("Location", "/api/v1/apps/"+a.Name)
	return writeJSON(w, http.StatusCreated, a)
}

func (s *Server) getApp(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a)
}

// updateApp applies a JSON merge patch (RFC 7396) to the app's settings:
// fields present change, objects merge, arrays are replaced, null resets a
// field to its default. The result is validated like a new app.
func (s *Server) updateApp(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	var patch map[string]any
	if err := decodeJSON(w, r, &patch); err != nil {
		return err
	}
	if patch == nil {
		return berth.E("update app", berth.Invalid, "the request body must be a JSON object")
	}
	in, err := mergeInput(inputOf(a), patch)
	if err != nil {
		return err
	}
	if src, ok := patch["source"].(map[string]any); ok && src["kind"] != nil {
		// A new kind of source drops the fields of the old one.
		switch in.Source.Kind {
		case berth.SourceGit:
			in.Source.Image = ""
		case berth.SourceImage:
			in.Source.Git, in.Source.Ref = "", ""
		case berth.SourceUpload:
			in.Source.Git, in.Source.Ref, in.Source.Image = "", "", ""
		case berth.SourcePush:
			in.Source.Git, in.Source.Image = "", ""
			if a.Source.Kind != berth.SourceGit && a.Source.Kind != berth.SourcePush {
				in.Source.Ref = "" // the default branch, unless the patch names one
			}
			if ref, ok := src["ref"].(string); ok {
				in.Source.Ref = ref
			}
		}
	}
	if in.Name != a.Name {
		return berth.E("update app", berth.Invalid, "an app cannot be renamed")
	}
	if in.Project != a.ProjectID {
		if pr, err := s.findProject(r, p, in.Project); err != nil || pr.ID != a.ProjectID {
			return berth.E("update app", berth.Invalid, "an app cannot move to another project")
		}
	}
	next := *a
	in.apply(&next)
	next.UpdatedAt = s.now().UTC()
	if err := s.checkApp(r.Context(), &next); err != nil {
		return err
	}
	if err := s.store.UpdateApp(r.Context(), &next); err != nil {
		return fmt.Errorf("update app %s: %w", a.Name, err)
	}
	if next.Source.Kind == berth.SourcePush && next.Source.Ref != a.Source.Ref && s.repos != nil && s.repos.Exists(a.ID) {
		// A clone checks out the branch that deploys.
		if err := s.repos.SetHead(r.Context(), a.ID, next.Source.Ref); err != nil {
			s.log.Warn("api: point the hosted repository's HEAD at the new branch", "app", a.ID, "err", err)
		}
	}
	return writeJSON(w, http.StatusOK, &next)
}

// mergeInput applies a merge patch to in and decodes the result strictly,
// so unknown fields in the patch are refused.
func mergeInput(in appInput, patch map[string]any) (appInput, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return in, fmt.Errorf("encode app: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return in, fmt.Errorf("decode app: %w", err)
	}
	b, err = json.Marshal(mergePatch(doc, patch))
	if err != nil {
		return in, fmt.Errorf("encode patched app: %w", err)
	}
	var out appInput
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return in, badJSON(err)
	}
	return out, nil
}

// mergePatch applies an RFC 7396 merge patch to target.
func mergePatch(target, patch map[string]any) map[string]any {
	if target == nil {
		target = map[string]any{}
	}
	for k, v := range patch {
		switch v := v.(type) {
		case nil:
			delete(target, k)
		case map[string]any:
			sub, _ := target[k].(map[string]any)
			target[k] = mergePatch(sub, v)
		default:
			target[k] = v
		}
	}
	return target
}

func (s *Server) deleteApp(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	volumes := false
	switch v := r.URL.Query().Get("volumes"); v {
	case "", "false":
	case "true":
		volumes = true
	default:
		return berth.E("delete app", berth.Invalid, "volumes must be true or false, not %q", clip(v))
	}
	if who, busy := s.pushes.holder(a.ID); busy {
		return berth.E("delete app", berth.Conflict, "%s is pushing to %s right now: try again when the push has ended", who, a.Name)
	}
	if err := s.engine.DeleteApp(r.Context(), a, volumes); err != nil {
		return fmt.Errorf("delete app %s: %w", a.Name, err)
	}
	if s.repos != nil {
		// The code pushed to it goes with the app (an app of the same name
		// made later has another ID, hence another repository anyway).
		if err := s.repos.Remove(a.ID); err != nil {
			s.log.Warn("api: remove the hosted repository of a deleted app", "app", a.ID, "err", err)
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) appStatus(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	st, err := s.engine.Status(r.Context(), a)
	if err != nil {
		return fmt.Errorf("status of app %s: %w", a.Name, err)
	}
	return writeJSON(w, http.StatusOK, st)
}

// clip shortens a user value for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:61] + "..."
	}
	return s
}
