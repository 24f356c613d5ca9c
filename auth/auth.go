// Package auth decides who is calling berth and what they may do: it makes
// and checks API tokens and browser sessions (with their CSRF tokens),
// checks passwords, TOTP codes and recovery codes within sign-in rate
// limits, signs people in through OpenID Connect, turns a request into a
// Principal, and bootstraps the first team, user and admin token of a
// fresh server.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/store"
)

// TokenPrefix starts every token secret, so that secret scanners and people
// can recognise one.
const TokenPrefix = "berth_"

// touchEvery is how often a token's LastUsedAt is written at most.
const touchEvery = time.Minute

var secretEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewToken returns a new token secret ("berth_" and 32 random bytes in
// lowercase base32) and the hash to store for it.
func NewToken() (secret string, hash []byte, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, fmt.Errorf("read random bytes: %w", err)
	}
	secret = TokenPrefix + secretEncoding.EncodeToString(b[:])
	return secret, HashToken(secret), nil
}

// HashToken returns the SHA-256 hash of a token secret, which is what the
// store keeps and looks tokens up by.
func HashToken(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Principal is who makes a request: the user, the team they act in, their
// role there and how they proved it (a token, or a browser session).
type Principal struct {
	Team  *berth.Team
	User  *berth.User
	Role  berth.Role   // the user's role in Team
	Token *berth.Token // nil when the request came with a session
	// Session is the browser session of the request; nil for a token.
	Session *berth.Session
	// Projects narrows a member to some projects of the team: nil means
	// every project.
	Projects []string
	// MustEnrol2FA is true when the team requires a second factor and the
	// user has not turned TOTP on: until they do, they may only enrol it
	// and sign out.
	MustEnrol2FA bool
	// Require2FA is the team's second-factor requirement; TOTPEnabled says
	// whether the user has TOTP on.
	Require2FA, TOTPEnabled bool
}

// Can reports whether the principal has permission need: the user's role
// must give it, and so must the token's scopes when a token is used. It is
// the one permission check of berth: the API, the dashboard and the CLI
// (through the API) all go through it.
func (p *Principal) Can(need berth.Scope) bool {
	if p == nil || p.User == nil || p.Team == nil || !berth.Allows(p.Role.Scopes(), need) {
		return false
	}
	return p.Token == nil || berth.Allows(p.Token.Scopes, need)
}

// Scopes lists the permissions the principal holds, most powerful first
// implied ones included.
func (p *Principal) Scopes() []berth.Scope {
	var out []berth.Scope
	for _, s := range []berth.Scope{berth.ScopeAdmin, berth.ScopeWrite, berth.ScopeDeploy, berth.ScopeReadSecrets, berth.ScopeRead} {
		if p.Can(s) {
			out = append(out, s)
		}
	}
	return out
}

// Name is how the principal appears in histories ("created by").
func (p *Principal) Name() string {
	switch {
	case p == nil:
		return ""
	case p.User != nil:
		return p.User.Name
	case p.Token != nil:
		return "token " + p.Token.Name
	}
	return ""
}

// Authenticate finds the principal of a request from its
// "Authorization: Bearer <secret>" header or, when it has none, its session
// cookie. A missing, malformed, unknown or expired token or session is an
// Unauthorized error. A mutating request (not GET, HEAD or OPTIONS) with a
// session must carry the session's CSRF token (X-CSRF-Token header or
// "csrf" form field), or it is Forbidden; a bearer token needs none, as no
// browser sends one by itself. Tokens and sessions are looked up by the
// hash of the secret, so the secret is never compared byte by byte against
// stored values. LastUsedAt (LastSeenAt) is written at most once a minute.
func Authenticate(ctx context.Context, st *store.Store, r *http.Request, now time.Time) (*Principal, error) {
	p, err := authenticate(ctx, st, r, now)
	if err != nil {
		return nil, err
	}
	return twoFactor(ctx, st, p)
}

// twoFactor fills in p's two-factor facts: whether its team requires 2FA,
// whether its user has TOTP on, and so whether it must enrol first.
func twoFactor(ctx context.Context, st *store.Store, p *Principal) (*Principal, error) {
	required, enabled, err := st.TwoFactor(ctx, p.Team.ID, p.User.ID)
	if err != nil {
		return nil, fmt.Errorf("find the 2FA requirement: %w", err)
	}
	p.MustEnrol2FA = required && !enabled
	p.Require2FA, p.TOTPEnabled = required, enabled
	return p, nil
}

func authenticate(ctx context.Context, st *store.Store, r *http.Request, now time.Time) (*Principal, error) {
	const op = "authenticate"
	if r.Header.Get("Authorization") == "" {
		if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
			return authenticateSession(ctx, st, r, c.Value, now)
		}
	}
	scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, berth.E(op, berth.Unauthorized, "authentication required: send Authorization: Bearer <token>")
	}
	return tokenPrincipal(ctx, st, strings.TrimSpace(secret), now)
}

// AuthenticateToken finds the principal of an API token secret presented
// some other way than a bearer header (git sends it as the password of
// HTTP Basic authentication), with the same checks as Authenticate.
func AuthenticateToken(ctx context.Context, st *store.Store, secret string, now time.Time) (*Principal, error) {
	p, err := tokenPrincipal(ctx, st, secret, now)
	if err != nil {
		return nil, err
	}
	return twoFactor(ctx, st, p)
}

// tokenPrincipal finds the principal of a token secret.
func tokenPrincipal(ctx context.Context, st *store.Store, secret string, now time.Time) (*Principal, error) {
	const op = "authenticate"
	denied := func(msg string) error { return berth.E(op, berth.Unauthorized, "%s", msg) }
	if !strings.HasPrefix(secret, TokenPrefix) || len(secret) > 128 {
		return nil, denied("invalid token")
	}
	hash := HashToken(secret)
	tok, err := st.TokenByHash(ctx, hash)
	if berth.IsKind(err, berth.NotFound) {
		return nil, denied("invalid token")
	}
	if err != nil {
		return nil, fmt.Errorf("find token: %w", err)
	}
	if subtle.ConstantTimeCompare(tok.Hash, hash) != 1 {
		return nil, denied("invalid token")
	}
	if tok.Expired(now) {
		return nil, denied("token expired")
	}
	if tok.UserID == "" {
		return nil, denied("invalid token")
	}
	// A token acts with its user's current role: one whose user left the
	// team is dead.
	team, user, role, err := member(ctx, st, tok.TeamID, tok.UserID, denied("invalid token"))
	if err != nil {
		return nil, err
	}
	if tok.LastUsedAt == nil || now.Sub(*tok.LastUsedAt) >= touchEvery {
		// Recording use is bookkeeping: a failure to write it must not
		// refuse a valid token, and the next request tries again.
		_ = st.TouchToken(ctx, tok.ID, now)
		t := now
		tok.LastUsedAt = &t
	}
	return &Principal{Team: team, User: user, Role: role, Token: tok}, nil
}

// member finds the team, the user and their role there, for a token or a
// session that names them. A user who is gone or no longer a member gets
// gone (an Unauthorized error): their credentials are dead.
func member(ctx context.Context, st *store.Store, teamID, userID string, gone error) (*berth.Team, *berth.User, berth.Role, error) {
	team, user, role, err := st.Membership(ctx, teamID, userID)
	if berth.IsKind(err, berth.NotFound) {
		return nil, nil, "", gone
	}
	if err != nil {
		return nil, nil, "", fmt.Errorf("find role of %s in %s: %w", userID, teamID, err)
	}
	return team, user, role, nil
}

// Bootstrap sets up a fresh store: team "main", user "admin" as its owner and
// an admin-scoped token named "bootstrap", whose secret it returns. It does
// nothing and returns "" when a team already exists.
func Bootstrap(ctx context.Context, st *store.Store, now time.Time) (secret string, err error) {
	has, err := st.HasTeams(ctx)
	if err != nil {
		return "", fmt.Errorf("check for teams: %w", err)
	}
	if has {
		return "", nil
	}
	team := &berth.Team{ID: berth.NewID("team"), Name: "main", CreatedAt: now}
	if err := st.CreateTeam(ctx, team); err != nil {
		return "", fmt.Errorf("create team: %w", err)
	}
	user := &berth.User{ID: berth.NewID("user"), Name: "admin", CreatedAt: now}
	if err := st.CreateUser(ctx, user); err != nil {
		return "", fmt.Errorf("create user: %w", err)
	}
	if err := st.AddMember(ctx, team.ID, user.ID, berth.RoleOwner); err != nil {
		return "", fmt.Errorf("add owner: %w", err)
	}
	secret, _, err = IssueToken(ctx, st, team.ID, user.ID, "bootstrap", []berth.Scope{berth.ScopeAdmin}, nil, now)
	return secret, err
}

// IssueToken creates a token for a member of a team and returns its secret,
// which is shown once and never stored.
func IssueToken(ctx context.Context, st *store.Store, teamID, userID, name string, scopes []berth.Scope, expires *time.Time, now time.Time) (string, *berth.Token, error) {
	for _, s := range scopes {
		if !berth.ValidScope(s) {
			return "", nil, berth.E("issue token", berth.Invalid, "unknown scope %q", s)
		}
	}
	secret, hash, err := NewToken()
	if err != nil {
		return "", nil, err
	}
	tok := &berth.Token{
		ID:        berth.NewID("tok"),
		TeamID:    teamID,
		UserID:    userID,
		Name:      name,
		Scopes:    scopes,
		Hash:      hash,
		CreatedAt: now,
		ExpiresAt: expires,
	}
	if err := st.CreateToken(ctx, tok); err != nil {
		return "", nil, fmt.Errorf("create token: %w", err)
	}
	return secret, tok, nil
}
