package api

import (
	"context"
	"net/http"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
)

// self is the permission of the routes where a signed-in person manages
// their own account (password, second factor, sign-out, linked identities):
// any principal may call them, whatever its role or token scopes, and the
// handler asks for the password again where that matters.
const self berth.Scope = "self"

// identityRoutes are sign-in, sign-out and the caller's own credentials.
func identityRoutes() []route {
	const v = "/api/v1"
	return []route{
		{"POST", v + "/login", public, (*Server).login, "session.login"},
		{"POST", v + "/logout", self, (*Server).logout, "session.logout"},
		{"POST", v + "/session/team", self, (*Server).switchTeam, "session.switch_team"},
		{"PUT", v + "/me/password", self, (*Server).changePassword, "user.password"},
		{"POST", v + "/me/totp", self, (*Server).startTOTP, "user.totp_enrol"},
		{"POST", v + "/me/totp/confirm", self, (*Server).confirmTOTP, "user.totp_enable"},
		{"DELETE", v + "/me/totp", self, (*Server).disableTOTP, "user.totp_disable"},
		{"PUT", v + "/team/require-2fa", berth.ScopeAdmin, (*Server).setRequire2FA, "team.security"},
		{"GET", v + "/oidc/login", public, (*Server).oidcLogin, ""},
		{"GET", v + "/oidc/callback", public, (*Server).oidcCallback, ""},
		{"POST", v + "/me/oidc/link", self, (*Server).oidcLink, "user.oidc_link"},
	}
}

// enrolRoutes are what a member of a team that requires a second factor
// may still do before turning TOTP on: enrol, sign out, or list their
// teams and switch to one that does not require it.
var enrolRoutes = map[string]bool{
	"GET /api/v1/me":               true,
	"POST /api/v1/logout":          true,
	"POST /api/v1/me/totp":         true,
	"POST /api/v1/me/totp/confirm": true,
	"GET /api/v1/teams":            true,
	"POST /api/v1/session/team":    true,
}

// LoginRequest signs in with an e-mail address and a password, plus a
// TOTP code or a recovery code when the user has TOTP on. Team picks the
// team to act in (by name; default the team the user last signed in to or
// switched to, else the first of their teams by name).
// With TokenName, the answer holds a new API token with the role's scopes
// (for the CLI) instead of setting a session cookie.
type LoginRequest struct {
	Email        string `json:"email"`
	Password     string `json:"password"`
	TOTPCode     string `json:"totp_code,omitempty"`
	RecoveryCode string `json:"recovery_code,omitempty"`
	Team         string `json:"team,omitempty"`
	TokenName    string `json:"token_name,omitempty"`
}

// LoginResponse is who signed in. CSRFToken is the session's token to send
// in the X-CSRF-Token header of every mutating request; Token is the API
// token's secret, shown once, when one was asked for.
type LoginResponse struct {
	User      *berth.User   `json:"user"`
	Team      *berth.Team   `json:"team"`
	Role      berth.Role    `json:"role"`
	Scopes    []berth.Scope `json:"scopes"`
	CSRFToken string        `json:"csrf_token,omitempty"`
	ExpiresAt *time.Time    `json:"expires_at,omitempty"`
	Token     string        `json:"token,omitempty"`
}

// pickTeam returns the team a user signs in to: the one named, else the
// one they last worked in (signed in to or switched to) while they are
// still a member, else the first of their teams by name.
func (s *Server) pickTeam(r *http.Request, userID, name string) (*berth.Team, berth.Role, error) {
	const op = "sign in"
	teams, err := s.store.UserTeams(r.Context(), userID)
	if err != nil {
		return nil, "", err
	}
	if len(teams) == 0 {
		return nil, "", berth.E(op, berth.Forbidden, "you are not a member of any team")
	}
	var pick int
	if name != "" {
		pick = slices.IndexFunc(teams, func(t berth.Team) bool { return t.Name == name })
		if pick < 0 {
			return nil, "", berth.E(op, berth.Forbidden, "you are not a member of team %q", name)
		}
	} else {
		last, err := s.store.LastTeam(r.Context(), userID)
		if err != nil {
			return nil, "", err
		}
		pick = max(0, slices.IndexFunc(teams, func(t berth.Team) bool { return t.ID == last }))
	}
	t := teams[pick]
	role, err := s.store.Member(r.Context(), t.ID, userID)
	if err != nil {
		return nil, "", err
	}
	return &t, role, nil
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	var req LoginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	now := s.now()
	addr := s.addrs.Client(r)
	if wait, err := s.limiter.Check(req.Email, addr, now); err != nil {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		return err
	}
	user, err := auth.Login(r.Context(), s.store, s.limiter, auth.Credentials{
		Email: req.Email, Password: req.Password, Code: req.TOTPCode, RecoveryCode: req.RecoveryCode,
	}, addr, now)
	if err != nil {
		return err
	}
	team, role, err := s.pickTeam(r, user.ID, req.Team)
	if err != nil {
		return err
	}
	if rec, ok := w.(*recorder); ok {
		// The audit log records who signed in, in which team.
		rec.audit.team, rec.audit.user = team, user
	}
	resp := LoginResponse{User: user, Team: team, Role: role}
	if req.TokenName != "" {
		name := strings.TrimSpace(req.TokenName)
		if name == "" || len(name) > 100 {
			return berth.E("sign in", berth.Invalid, "token_name must have 1 to 100 characters")
		}
		secret, tok, err := auth.IssueToken(r.Context(), s.store, team.ID, user.ID, name, role.Scopes(), nil, now)
		if err != nil {
			return err
		}
		resp.Token = secret
		resp.Scopes = (&auth.Principal{Team: team, User: user, Role: role, Token: tok}).Scopes()
		return writeJSON(w, http.StatusOK, resp)
	}
	secret, sess, err := auth.StartSession(r.Context(), s.store, user.ID, team.ID, addr, r.UserAgent(), now)
	if err != nil {
		return err
	}
	http.SetCookie(w, auth.SessionCookieFor(secret, sess, s.secureCookies))
	resp.CSRFToken = sess.CSRF
	resp.ExpiresAt = &sess.ExpiresAt
	resp.Scopes = (&auth.Principal{Team: team, User: user, Role: role}).Scopes()
	return writeJSON(w, http.StatusOK, resp)
}

// logout ends the caller's session, or deletes the token the request came
// with.
func (s *Server) logout(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if p.Session != nil {
		if err := s.store.DeleteSession(r.Context(), p.Session.ID); err != nil {
			return err
		}
		http.SetCookie(w, auth.ClearSessionCookie(s.secureCookies))
	} else if p.Token != nil {
		if err := s.store.DeleteToken(r.Context(), p.Team.ID, p.Token.ID); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// PasswordRequest changes the caller's password. CurrentPassword may be
// empty only while the user has no password (the bootstrap admin). Email,
// when given, becomes the user's sign-in address.
type PasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
	Email           string `json:"email,omitempty"`
}

// PasswordResponse says what a password change revoked.
type PasswordResponse struct {
	RevokedSessions int64  `json:"revoked_sessions"`
	RevokedTokens   int64  `json:"revoked_tokens"`
	Message         string `json:"message"`
}

// validEmail checks an e-mail address is a bare addr-spec of sane length.
func validEmail(e string) error {
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" || len(e) > 254 {
		return berth.E("set email", berth.Invalid, "%q is not an e-mail address", e)
	}
	return nil
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req PasswordRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Email != "" {
		if err := validEmail(req.Email); err != nil {
			return err
		}
		if other, err := s.store.UserByEmail(r.Context(), req.Email); err == nil && other.ID != p.User.ID {
			return berth.E("set email", berth.Conflict, "another user has this e-mail address")
		} else if err != nil && !berth.IsKind(err, berth.NotFound) {
			return err
		}
	}
	var keep []byte
	if p.Session != nil {
		keep = p.Session.ID
	}
	sessions, tokens, err := auth.ChangePassword(r.Context(), s.store, s.limiter, p.User, req.CurrentPassword, req.NewPassword,
		s.addrs.Client(r), keep, s.now())
	if err != nil {
		return err
	}
	if req.Email != "" {
		if err := s.store.SetUserEmail(r.Context(), p.User.ID, req.Email); err != nil {
			return err
		}
	}
	msg := "password changed; every other session of yours was signed out and all your API tokens were deleted"
	if p.Token != nil {
		msg += ", including the one this request used: sign in again (berth login)"
	}
	return writeJSON(w, http.StatusOK, PasswordResponse{RevokedSessions: sessions, RevokedTokens: tokens, Message: msg})
}

// ReauthRequest repeats the caller's password before a sensitive change.
type ReauthRequest struct {
	Password string `json:"password"`
}

// TOTPEnrolment is a new TOTP secret, to add to an authenticator app (the
// URL as a QR code, or the secret typed in).
type TOTPEnrolment struct {
	Secret     string `json:"secret"`
	OTPAuthURL string `json:"otpauth_url"`
}

func (s *Server) startTOTP(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req ReauthRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := auth.CheckUserPassword(r.Context(), s.store, s.limiter, p.User, req.Password, s.addrs.Client(r), s.now()); err != nil {
		return err
	}
	secret, url, err := auth.StartTOTP(r.Context(), s.store, p.User)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, TOTPEnrolment{Secret: secret, OTPAuthURL: url})
}

// TOTPConfirm proves an authenticator app has the new secret.
type TOTPConfirm struct {
	Code string `json:"code"`
}

// RecoveryCodes are shown once, when TOTP is turned on; each works once.
type RecoveryCodes struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

func (s *Server) confirmTOTP(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req TOTPConfirm
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	codes, err := auth.ConfirmTOTP(r.Context(), s.store, p.User.ID, req.Code, s.now())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, RecoveryCodes{RecoveryCodes: codes})
}

func (s *Server) disableTOTP(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req ReauthRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := auth.CheckUserPassword(r.Context(), s.store, s.limiter, p.User, req.Password, s.addrs.Client(r), s.now()); err != nil {
		return err
	}
	if err := s.store.DisableTOTP(r.Context(), p.User.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Require2FA is the team's second-factor requirement.
type Require2FA struct {
	Require2FA bool `json:"require_2fa"`
}

// setRequire2FA turns the team's second-factor requirement on or off. Only
// an owner may; an owner without TOTP may not turn it on (they would shut
// themselves out of everything but enrolment).
func (s *Server) setRequire2FA(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	const op = "set require_2fa"
	if p.Role != berth.RoleOwner {
		return berth.E(op, berth.Forbidden, "only an owner of the team may change whether it requires two-factor authentication")
	}
	var req Require2FA
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Require2FA {
		_, on, err := s.store.TOTP(r.Context(), p.User.ID)
		if err != nil {
			return err
		}
		if !on {
			return berth.E(op, berth.Conflict, "turn on two-factor authentication for yourself first")
		}
	}
	if err := s.store.SetTeamRequire2FA(r.Context(), p.Team.ID, req.Require2FA); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, req)
}

// oidcBindingCookie carries the browser's binding of an OIDC flow.
func (s *Server) oidcBindingCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: auth.OIDCBindingCookie, Value: value, Path: "/api/v1/oidc/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.secureCookies, SameSite: http.SameSiteLaxMode}
}

func (s *Server) oidcEnabled() error {
	if s.oidc == nil {
		return berth.E("oidc", berth.NotFound, "sign-in through OpenID Connect is not configured on this server")
	}
	return nil
}

// oidcLogin sends the browser to the provider to sign in.
func (s *Server) oidcLogin(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	if err := s.oidcEnabled(); err != nil {
		return err
	}
	url, binding, err := s.oidc.Start(r.Context(), "", s.now())
	if err != nil {
		return err
	}
	http.SetCookie(w, s.oidcBindingCookie(binding, 600))
	http.Redirect(w, r, url, http.StatusFound)
	return nil
}

// OIDCLink is where to send the browser to link an identity.
type OIDCLink struct {
	URL string `json:"url"`
}

// oidcLink starts linking an identity at the provider to the signed-in
// user. It needs a browser session: the flow ends in that browser.
func (s *Server) oidcLink(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := s.oidcEnabled(); err != nil {
		return err
	}
	if p.Session == nil {
		return berth.E("link identity", berth.Invalid, "link an identity from a signed-in browser session, not with an API token")
	}
	url, binding, err := s.oidc.Start(r.Context(), p.User.ID, s.now())
	if err != nil {
		return err
	}
	http.SetCookie(w, s.oidcBindingCookie(binding, 600))
	return writeJSON(w, http.StatusOK, OIDCLink{URL: url})
}

// oidcCallback is where the provider sends the browser back. A sign-in
// finds the user by the identity they linked, never by e-mail; a link flow
// links the identity to the user who started it, who must still be signed
// in, in this browser.
func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	const op = "OIDC callback"
	if err := s.oidcEnabled(); err != nil {
		return err
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return berth.E(op, berth.Unauthorized, "the provider refused the sign-in (%.100s)", e)
	}
	binding := ""
	if c, err := r.Cookie(auth.OIDCBindingCookie); err == nil {
		binding = c.Value
	}
	http.SetCookie(w, s.oidcBindingCookie("", -1))
	now := s.now()
	res, err := s.oidc.Finish(r.Context(), q.Get("state"), q.Get("code"), binding, now)
	if err != nil {
		return err
	}
	if res.LinkUser != "" {
		p, err := auth.Authenticate(r.Context(), s.store, r, now)
		if err != nil || p.Session == nil || p.User.ID != res.LinkUser {
			return berth.E(op, berth.Unauthorized, "sign in as the user who started linking, in this browser, and start again")
		}
		if err := s.store.LinkIdentity(r.Context(), &berth.Identity{Issuer: res.Issuer, Subject: res.Subject, UserID: p.User.ID, CreatedAt: now}); err != nil {
			return err
		}
		http.Redirect(w, r, s.publicURL+"/?oidc=linked", http.StatusSeeOther)
		return nil
	}
	userID, err := s.store.IdentityUser(r.Context(), res.Issuer, res.Subject)
	if berth.IsKind(err, berth.NotFound) {
		return berth.E(op, berth.Unauthorized, "this account of the provider is not linked to a berth user: sign in with your password, then link it")
	}
	if err != nil {
		return err
	}
	team, _, err := s.pickTeam(r, userID, "")
	if err != nil {
		return err
	}
	secret, sess, err := auth.StartSession(r.Context(), s.store, userID, team.ID, s.addrs.Client(r), r.UserAgent(), now)
	if err != nil {
		return err
	}
	http.SetCookie(w, auth.SessionCookieFor(secret, sess, s.secureCookies))
	http.Redirect(w, r, s.publicURL+"/", http.StatusSeeOther)
	return nil
}

// Login signs in with a password and returns who signed in; set
// req.TokenName to get an API token (a Client keeps no cookies).
func (c *Client) Login(ctx context.Context, req LoginRequest) (*LoginResponse, error) {
	var out LoginResponse
	if err := c.do(ctx, "sign in", "POST", "/api/v1/login", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Logout deletes the client's token on the server.
func (c *Client) Logout(ctx context.Context) error {
	return c.do(ctx, "sign out", "POST", "/api/v1/logout", nil, nil)
}

// ChangePassword changes the caller's password (and e-mail, when given).
func (c *Client) ChangePassword(ctx context.Context, req PasswordRequest) (*PasswordResponse, error) {
	var out PasswordResponse
	if err := c.do(ctx, "change password", "PUT", "/api/v1/me/password", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// StartTOTP starts TOTP enrolment.
func (c *Client) StartTOTP(ctx context.Context, password string) (*TOTPEnrolment, error) {
	var out TOTPEnrolment
	if err := c.do(ctx, "start two-factor enrolment", "POST", "/api/v1/me/totp", ReauthRequest{Password: password}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ConfirmTOTP turns TOTP on and returns the recovery codes.
func (c *Client) ConfirmTOTP(ctx context.Context, code string) ([]string, error) {
	var out RecoveryCodes
	if err := c.do(ctx, "confirm two-factor enrolment", "POST", "/api/v1/me/totp/confirm", TOTPConfirm{Code: code}, &out); err != nil {
		return nil, err
	}
	return out.RecoveryCodes, nil
}

// DisableTOTP turns TOTP off.
func (c *Client) DisableTOTP(ctx context.Context, password string) error {
	return c.do(ctx, "turn off two-factor authentication", "DELETE", "/api/v1/me/totp", ReauthRequest{Password: password}, nil)
}
