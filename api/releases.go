package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
)

// Release is a release as the API shows it: env values are redacted (""
// with EnvRedacted set) unless the caller may read secrets.
type Release struct {
	*berth.Release
	Config ReleaseConfig `json:"config"`
	// Kept says the release is among the newest ones whose images berth
	// keeps (see --keep-releases): a rollback to it needs no rebuild.
	Kept bool `json:"kept"`
}

// ReleaseConfig is the configuration of a Release.
type ReleaseConfig struct {
	berth.ReleaseConfig
	EnvRedacted bool `json:"env_redacted,omitempty"`
}

func releaseOut(rel *berth.Release, secrets bool) Release {
	c := ReleaseConfig{ReleaseConfig: rel.Config}
	if !secrets && len(rel.Config.Env) > 0 {
		c.Env = make(map[string]string, len(rel.Config.Env))
		for k := range rel.Config.Env {
			c.Env[k] = ""
		}
		c.EnvRedacted = true
	}
	return Release{Release: rel, Config: c}
}

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	rels, err := s.store.Releases(r.Context(), p.Team.ID, a.ID, limit)
	if err != nil {
		return fmt.Errorf("list releases of %s: %w", a.Name, err)
	}
	secrets := p.Can(berth.ScopeReadSecrets)
	keep := len(rels)
	if s.engine != nil {
		keep = s.engine.KeepReleases()
	}
	out := make([]Release, len(rels))
	for i := range rels {
		// Newest first: the first keep of them are kept.
		out[i] = releaseOut(&rels[i], secrets)
		out[i].Kept = i < keep
	}
	return writeJSON(w, http.StatusOK, out)
}

// RollbackRequest is the body of POST /api/v1/apps/{app}/rollback. Release
// is a release ID, a release number ("3" or "v3"), or "" for the release
// before the live one.
type RollbackRequest struct {
	Release string `json:"release"`
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	var req RollbackRequest
	if r.ContentLength != 0 || mediaType(r) != "" {
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
	}
	id, err := s.resolveRelease(r, p, a, strings.TrimSpace(req.Release))
	if err != nil {
		return err
	}
	d, err := s.engine.Rollback(r.Context(), a, id, p.Name())
	if err != nil {
		return fmt.Errorf("roll back %s: %w", a.Name, err)
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/apps/%s/deployments/%s", a.Name, d.ID))
	return writeJSON(w, http.StatusAccepted, d)
}

// resolveRelease turns a release ID or number of app a into its ID.
func (s *Server) resolveRelease(r *http.Request, p *auth.Principal, a *berth.App, ref string) (string, error) {
	if ref == "" {
		return "", nil
	}
	ctx := r.Context()
	notFound := berth.E("find release", berth.NotFound, "app %s has no release %q", a.Name, clip(ref))
	if n, ok := number(ref); ok {
		latest, err := s.store.Releases(ctx, p.Team.ID, a.ID, 1)
		if err != nil {
			return "", fmt.Errorf("list releases of %s: %w", a.Name, err)
		}
		if len(latest) == 0 || n > latest[0].Number {
			return "", notFound
		}
		rels, err := s.store.Releases(ctx, p.Team.ID, a.ID, latest[0].Number-n+1)
		if err != nil {
			return "", fmt.Errorf("list releases of %s: %w", a.Name, err)
		}
		for _, rel := range rels {
			if rel.Number == n {
				return rel.ID, nil
			}
		}
		return "", notFound
	}
	rel, err := s.store.Release(ctx, p.Team.ID, ref)
	if berth.IsKind(err, berth.NotFound) || err == nil && rel.AppID != a.ID {
		return "", notFound
	}
	if err != nil {
		return "", fmt.Errorf("find release %s: %w", ref, err)
	}
	return rel.ID, nil
}
