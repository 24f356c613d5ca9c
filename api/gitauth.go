package api

import (
	"fmt"
	"net/http"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/git"
)

// The credentials of an app's Git source. Secrets go in and never come
// out: the deploy key's private half and the access token are sealed in
// the store and reach only git; these routes show the public key, whether
// a token is set (with its user name and when), and the trusted host keys.
// Writing them needs the write scope, like env vars.

// DeployKeyRequest is the optional body of POST
// /api/v1/apps/{app}/deploy-key: Rotate replaces an existing key (which
// stops working at once); without it, an app that has a key keeps it and
// the request is a Conflict.
type DeployKeyRequest struct {
	Rotate bool `json:"rotate,omitempty"`
}

// GitCredentialsRequest is the body of PUT
// /api/v1/apps/{app}/git-credentials: an access token for http(s) URLs and
// the user name it goes with (optional: "x-access-token" by default; GitLab
// takes "oauth2", Bitbucket "x-token-auth").
type GitCredentialsRequest struct {
	Username string `json:"username,omitempty"`
	Token    string `json:"token"`
}

// HostKeysRequest is the body of PUT /api/v1/apps/{app}/host-keys:
// known_hosts lines, as ssh-keyscan prints them, that replace the host
// keys the app trusts.
type HostKeysRequest struct {
	KnownHosts string `json:"known_hosts"`
}

func (s *Server) getDeployKey(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	k, err := s.store.DeployKey(r.Context(), p.Team.ID, a.ID)
	if err != nil {
		return fmt.Errorf("deploy key of %s: %w", a.Name, err)
	}
	return writeJSON(w, http.StatusOK, k)
}

func (s *Server) createDeployKey(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	const op = "create deploy key"
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	var req DeployKeyRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
	}
	ctx := r.Context()
	if !req.Rotate {
		_, err := s.store.DeployKey(ctx, p.Team.ID, a.ID)
		switch {
		case err == nil:
			return berth.E(op, berth.Conflict, "app %s already has a deploy key: rotate it ({\"rotate\": true}, or berth apps deploy-key %s --rotate) to replace it", a.Name, a.Name)
		case !berth.IsKind(err, berth.NotFound):
			return fmt.Errorf("deploy key of %s: %w", a.Name, err)
		}
	}
	private, public, err := git.NewDeployKey("berth:" + a.Name)
	if err != nil {
		return berth.Wrap(op, berth.Internal, err)
	}
	k, err := s.store.SetDeployKey(ctx, p.Team.ID, a.ID, private, public)
	clear(private)
	if err != nil {
		return fmt.Errorf("store deploy key of %s: %w", a.Name, err)
	}
	return writeJSON(w, http.StatusCreated, k)
}

func (s *Server) deleteDeployKey(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	if err := s.store.DeleteDeployKey(r.Context(), p.Team.ID, a.ID); err != nil {
		return fmt.Errorf("delete deploy key of %s: %w", a.Name, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getGitCredentials(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	c, err := s.store.GitCredentials(r.Context(), p.Team.ID, a.ID)
	if err != nil {
		return fmt.Errorf("git credentials of %s: %w", a.Name, err)
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *Server) setGitCredentials(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	const op = "set git credentials"
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	var req GitCredentialsRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := berth.ValidGitToken(req.Username, req.Token); err != nil {
		return berth.E(op, berth.Invalid, "%v", err)
	}
	c, err := s.store.SetGitToken(r.Context(), p.Team.ID, a.ID, req.Username, req.Token)
	if err != nil {
		return fmt.Errorf("set git credentials of %s: %w", a.Name, err)
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *Server) deleteGitCredentials(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	if err := s.store.DeleteGitToken(r.Context(), p.Team.ID, a.ID); err != nil {
		return fmt.Errorf("delete git credentials of %s: %w", a.Name, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listHostKeys(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	keys, err := s.store.HostKeys(r.Context(), p.Team.ID, a.ID)
	if err != nil {
		return fmt.Errorf("host keys of %s: %w", a.Name, err)
	}
	if keys == nil {
		keys = []berth.HostKey{}
	}
	return writeJSON(w, http.StatusOK, keys)
}

func (s *Server) setHostKeys(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	const op = "set host keys"
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	var req HostKeysRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	keys, err := git.ParseHostKeys(req.KnownHosts, s.now())
	if err != nil {
		return berth.E(op, berth.Invalid, "%v", err)
	}
	ctx := r.Context()
	if err := s.store.SetHostKeys(ctx, p.Team.ID, a.ID, keys); err != nil {
		return fmt.Errorf("set host keys of %s: %w", a.Name, err)
	}
	if keys, err = s.store.HostKeys(ctx, p.Team.ID, a.ID); err != nil {
		return fmt.Errorf("host keys of %s: %w", a.Name, err)
	}
	return writeJSON(w, http.StatusOK, keys)
}

func (s *Server) resetHostKeys(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.loadApp(r, p)
	if err != nil {
		return err
	}
	if err := s.store.SetHostKeys(r.Context(), p.Team.ID, a.ID, nil); err != nil {
		return fmt.Errorf("reset host keys of %s: %w", a.Name, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
