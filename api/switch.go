package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
)

// SwitchTeamRequest moves the caller's browser session to another of their
// teams (by ID or name).
type SwitchTeamRequest struct {
	Team string `json:"team"`
}

// switchTeam re-binds the caller's session to another team they are a
// member of, so a person in several teams changes team without signing in
// again. Only a session moves: an API token belongs to its team for good.
// A team that requires a second factor is refused to a user without one,
// as signing in to it would leave them able to do nothing but enrol.
func (s *Server) switchTeam(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	const op = "switch team"
	if p.Session == nil {
		return berth.E(op, berth.Invalid, "an API token belongs to its team and cannot switch: create a token in the other team (POST /api/v1/tokens with \"team\")")
	}
	var in SwitchTeamRequest
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	in.Team = strings.TrimSpace(in.Team)
	if in.Team == "" {
		return berth.E(op, berth.Invalid, "team: name the team to switch to (its ID or name)")
	}
	team, role, err := s.otherTeam(r, p, in.Team)
	if err != nil {
		return err
	}
	required, enabled, err := s.store.TwoFactor(r.Context(), team.ID, p.User.ID)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if required && !enabled {
		return berth.E(op, berth.Forbidden, "team %s requires two-factor authentication: turn it on for your account first (POST /api/v1/me/totp)", team.Name)
	}
	if err := s.store.SetSessionTeam(r.Context(), p.Session.ID, p.User.ID, team.ID); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if rec, ok := w.(*recorder); ok {
		// The team entered records who came in.
		rec.audit.team, rec.audit.user = team, p.User
	}
	np := &auth.Principal{Team: team, User: p.User, Role: role, Session: p.Session}
	return writeJSON(w, http.StatusOK, Me{User: p.User, Team: team, Role: role, Scopes: np.Scopes(),
		CSRFToken: p.Session.CSRF, TOTPEnabled: enabled, TeamRequires2FA: required})
}
