package api

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/engine"
)

// EnvVar is an env var as the API shows it: its value is "" and Redacted is
// set unless the caller's token has the read-secrets scope.
type EnvVar struct {
	Key       string    `json:"key"`
	Value     string    `json:"value"`
	Redacted  bool      `json:"redacted,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// EnvPatch is the body of PATCH /api/v1/apps/{app}/env: keys to set, keys
// to remove, and whether to deploy the app afterwards.
type EnvPatch struct {
	Set    map[string]string `json:"set,omitempty"`
	Unset  []string          `json:"unset,omitempty"`
	Deploy bool              `json:"deploy,omitempty"`
}

// EnvResult is the answer to an env patch: the env after it, and the
// deployment it started when asked to deploy.
type EnvResult struct {
	Env        []EnvVar          `json:"env"`
	Deployment *berth.Deployment `json:"deployment,omitempty"`
}

func envOut(vars []berth.EnvVar, secrets bool) []EnvVar {
	out := make([]EnvVar, len(vars))
	for i, v := range vars {
		out[i] = EnvVar{Key: v.Key, Value: v.Value, UpdatedAt: v.UpdatedAt}
		if !secrets {
			out[i].Value, out[i].Redacted = "", true
		}
	}
	return out
}

func (s *Server) listEnv(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	vars, err := s.store.Env(r.Context(), p.Team.ID, a.ID)
	if err != nil {
		return fmt.Errorf("list env of %s: %w", a.Name, err)
	}
	return writeJSON(w, http.StatusOK, envOut(vars, p.Can(berth.ScopeReadSecrets)))
}

func (s *Server) updateEnv(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	const op = "update env"
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	var req EnvPatch
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if len(req.Set)+len(req.Unset) > berth.MaxEnvVars {
		return berth.E(op, berth.Invalid, "at most %d env vars per request", berth.MaxEnvVars)
	}
	for k, v := range req.Set {
		if err := berth.ValidEnv(k, v); err != nil {
			return berth.E(op, berth.Invalid, "%v", err)
		}
	}
	for _, k := range req.Unset {
		if err := berth.ValidEnv(k, ""); err != nil {
			return berth.E(op, berth.Invalid, "%v", err)
		}
		if _, ok := req.Set[k]; ok {
			return berth.E(op, berth.Invalid, "env key %s is both set and unset", k)
		}
	}
	if req.Deploy && !p.Can(berth.ScopeDeploy) {
		return berth.E(op, berth.Forbidden, "deploying needs the %q scope", berth.ScopeDeploy)
	}
	ctx := r.Context()
	if len(req.Set) > 0 {
		current, err := s.store.Env(ctx, p.Team.ID, a.ID)
		if err != nil {
			return fmt.Errorf("list env of %s: %w", a.Name, err)
		}
		n := len(current)
		for k := range req.Set {
			if !slices.ContainsFunc(current, func(v berth.EnvVar) bool { return v.Key == k }) {
				n++
			}
		}
		if n > berth.MaxEnvVars {
			return berth.E(op, berth.Invalid, "an app has at most %d env vars", berth.MaxEnvVars)
		}
		if err := s.store.SetEnv(ctx, p.Team.ID, a.ID, req.Set); err != nil {
			return fmt.Errorf("set env of %s: %w", a.Name, err)
		}
	}
	if len(req.Unset) > 0 {
		if err := s.store.UnsetEnv(ctx, p.Team.ID, a.ID, req.Unset); err != nil {
			return fmt.Errorf("unset env of %s: %w", a.Name, err)
		}
	}
	var res EnvResult
	vars, err := s.store.Env(ctx, p.Team.ID, a.ID)
	if err != nil {
		return fmt.Errorf("list env of %s: %w", a.Name, err)
	}
	res.Env = envOut(vars, p.Can(berth.ScopeReadSecrets))
	if req.Deploy {
		d, err := s.engine.Deploy(ctx, a, engine.DeployRequest{CreatedBy: p.Name()})
		if err != nil {
			return fmt.Errorf("deploy %s: %w", a.Name, err)
		}
		res.Deployment = d
	}
	return writeJSON(w, http.StatusOK, res)
}
