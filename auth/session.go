package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/store"
)

// Browser sessions.
const (
	// SessionCookie names the cookie that holds a session's secret.
	SessionCookie = "berth_session"
	// SessionIdle ends a session unused for this long.
	SessionIdle = 12 * time.Hour
	// SessionMax ends every session this long after sign-in, used or not.
	SessionMax = 7 * 24 * time.Hour
	// CSRFHeader carries the session's CSRF token on mutating requests; a
	// form may send it as the field CSRFField instead.
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf"
)

var cookieEncoding = base64.RawURLEncoding

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return cookieEncoding.EncodeToString(b), nil
}

// StartSession signs a user in to a team from a browser: it stores a new
// session and returns the secret to put in its cookie (see SessionCookieFor).
func StartSession(ctx context.Context, st *store.Store, userID, teamID string, addr netip.Addr, userAgent string, now time.Time) (string, *berth.Session, error) {
	secret, err := randomString(32)
	if err != nil {
		return "", nil, err
	}
	csrf, err := randomString(32)
	if err != nil {
		return "", nil, err
	}
	if len(userAgent) > 256 {
		userAgent = userAgent[:256]
	}
	a := ""
	if addr.IsValid() {
		a = addr.String()
	}
	s := &berth.Session{
		ID: HashToken(secret), UserID: userID, TeamID: teamID, CSRF: csrf,
		CreatedAt: now, ExpiresAt: now.Add(SessionMax), LastSeenAt: now,
		ClientAddr: a, UserAgent: strings.ToValidUTF8(userAgent, "?"),
	}
	if err := st.CreateSession(ctx, s); err != nil {
		return "", nil, fmt.Errorf("create session: %w", err)
	}
	return secret, s, nil
}

// SessionCookieFor is the cookie of a session: HttpOnly (no script reads
// it), SameSite=Lax (no other site's form or fetch sends it), Secure
// unless secure is false (a server on plain http for local use).
func SessionCookieFor(secret string, s *berth.Session, secure bool) *http.Cookie {
	return &http.Cookie{
		Name: SessionCookie, Value: secret, Path: "/", Expires: s.ExpiresAt,
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
	}
}

// ClearSessionCookie removes the session cookie from a browser.
func ClearSessionCookie(secure bool) *http.Cookie {
	return &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode}
}

// EndSession signs out the session whose cookie r carries, if any.
func EndSession(ctx context.Context, st *store.Store, r *http.Request) error {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	return st.DeleteSession(ctx, HashToken(c.Value))
}

// safeMethod reports whether a method changes nothing and so needs no CSRF
// token.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkCSRF refuses a mutating request of a session that does not carry
// the session's CSRF token in the X-CSRF-Token header or, for a form
// post, the "csrf" field. The comparison takes constant time.
func checkCSRF(r *http.Request, s *berth.Session) error {
	if safeMethod(r.Method) {
		return nil
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		r.Body = http.MaxBytesReader(nil, r.Body, 1<<20)
		got = r.PostFormValue(CSRFField)
	}
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) != 1 {
		return berth.E("authenticate", berth.Forbidden, "missing or wrong CSRF token: send the session's token in the %s header", CSRFHeader)
	}
	return nil
}

// authenticateSession finds the principal of a request that carries a
// session cookie.
func authenticateSession(ctx context.Context, st *store.Store, r *http.Request, secret string, now time.Time) (*Principal, error) {
	const op = "authenticate"
	denied := func(msg string) error { return berth.E(op, berth.Unauthorized, "%s", msg) }
	if len(secret) != cookieEncoding.EncodedLen(32) {
		return nil, denied("invalid session: sign in again")
	}
	hash := HashToken(secret)
	s, err := st.SessionByHash(ctx, hash)
	if berth.IsKind(err, berth.NotFound) {
		return nil, denied("invalid session: sign in again")
	}
	if err != nil {
		return nil, fmt.Errorf("find session: %w", err)
	}
	if subtle.ConstantTimeCompare(s.ID, hash) != 1 {
		return nil, denied("invalid session: sign in again")
	}
	if s.Expired(now, SessionIdle) {
		_ = st.DeleteSession(ctx, hash)
		return nil, denied("session expired: sign in again")
	}
	if err := checkCSRF(r, s); err != nil {
		return nil, err
	}
	team, user, role, err := member(ctx, st, s.TeamID, s.UserID, denied("you are no longer a member of this team: sign in again"))
	if err != nil {
		return nil, err
	}
	if now.Sub(s.LastSeenAt) >= touchEvery {
		_ = st.TouchSession(ctx, hash, now)
		s.LastSeenAt = now
	}
	return &Principal{Team: team, User: user, Role: role, Session: s}, nil
}

// RevokeUser ends every session of a user except keepSession (the hash of
// the one to keep, or nil for none) and deletes all their API tokens, in
// every team. Changing a password calls it.
func RevokeUser(ctx context.Context, st *store.Store, userID string, keepSession []byte) (sessions, tokens int64, err error) {
	sessions, err = st.DeleteUserSessions(ctx, userID, keepSession)
	if err != nil {
		return 0, 0, err
	}
	tokens, err = st.DeleteUserTokens(ctx, userID)
	return sessions, tokens, err
}

// Credentials are what a person signs in with: an e-mail address and a
// password, and when their TOTP is on, a current code or a recovery code.
type Credentials struct {
	Email        string
	Password     string
	Code         string
	RecoveryCode string
}

// dummyHash is checked against when no account matches, so that an
// unknown address takes as long to refuse as a wrong password.
var dummyHash = sync.OnceValue(func() string {
	h, _ := HashPassword("berth-no-such-account-password")
	return h
})

// Login checks credentials for a sign-in from addr, within the limits of
// lim, and returns the user. Every refusal of an e-mail or password says
// the same thing, whether the account exists or not.
func Login(ctx context.Context, st *store.Store, lim *Limiter, c Credentials, addr netip.Addr, now time.Time) (*berth.User, error) {
	const op = "sign in"
	if _, err := lim.Check(c.Email, addr, now); err != nil {
		return nil, err
	}
	wrong := func() error {
		lim.Fail(c.Email, addr, now)
		return berth.E(op, berth.Unauthorized, "wrong e-mail or password")
	}
	if c.Email == "" || c.Password == "" || len(c.Email) > 320 {
		return nil, berth.E(op, berth.Invalid, "send an e-mail address and a password")
	}
	user, err := st.UserByEmail(ctx, c.Email)
	if berth.IsKind(err, berth.NotFound) {
		CheckPassword(dummyHash(), c.Password)
		return nil, wrong()
	}
	if err != nil {
		return nil, err
	}
	hash, err := st.PasswordHash(ctx, user.ID)
	if err != nil {
		return nil, err
	}
	if hash == "" {
		CheckPassword(dummyHash(), c.Password)
		return nil, wrong()
	}
	if !CheckPassword(hash, c.Password) {
		return nil, wrong()
	}
	secret, on, err := st.TOTP(ctx, user.ID)
	if err != nil {
		return nil, err
	}
	if on {
		var ok bool
		switch {
		case c.Code != "":
			ok, err = CheckTOTP(ctx, st, user.ID, secret, c.Code, now)
		case c.RecoveryCode != "":
			ok, err = UseRecoveryCode(ctx, st, user.ID, c.RecoveryCode, now)
		default:
			return nil, berth.E(op, berth.Unauthorized, "a second factor is needed: send the current code of your authenticator app (totp_code) or a recovery code (recovery_code)")
		}
		if err != nil {
			return nil, err
		}
		if !ok {
			lim.Fail(c.Email, addr, now)
			return nil, berth.E(op, berth.Unauthorized, "wrong or already used second-factor code")
		}
	}
	lim.Succeed(c.Email)
	return user, nil
}

// ChangePassword sets a user's password after checking the current one
// (which may be empty only when the user has none yet), then ends every
// other session of the user and deletes all their API tokens: whoever
// knew the old password is out. keepSession is the hash of the session
// making the change (nil for none). Wrong current passwords count against
// the account's sign-in limit.
func ChangePassword(ctx context.Context, st *store.Store, lim *Limiter, user *berth.User, current, next string, addr netip.Addr, keepSession []byte, now time.Time) (sessions, tokens int64, err error) {
	const op = "change password"
	account := user.Email
	if account == "" {
		account = "user:" + user.ID
	}
	if _, err := lim.Check(account, addr, now); err != nil {
		return 0, 0, err
	}
	hash, err := st.PasswordHash(ctx, user.ID)
	if err != nil {
		return 0, 0, err
	}
	if hash != "" && !CheckPassword(hash, current) {
		lim.Fail(account, addr, now)
		return 0, 0, berth.E(op, berth.Forbidden, "the current password is wrong")
	}
	newHash, err := HashPassword(next)
	if err != nil {
		return 0, 0, err
	}
	if err := st.SetPassword(ctx, user.ID, newHash, now); err != nil {
		return 0, 0, err
	}
	return RevokeUser(ctx, st, user.ID, keepSession)
}

// CheckUserPassword checks a signed-in user's password before a sensitive
// change (turning TOTP off); a user without a password passes.
func CheckUserPassword(ctx context.Context, st *store.Store, lim *Limiter, user *berth.User, pw string, addr netip.Addr, now time.Time) error {
	account := user.Email
	if account == "" {
		account = "user:" + user.ID
	}
	if _, err := lim.Check(account, addr, now); err != nil {
		return err
	}
	hash, err := st.PasswordHash(ctx, user.ID)
	if err != nil {
		return err
	}
	if hash != "" && !CheckPassword(hash, pw) {
		lim.Fail(account, addr, now)
		return berth.E("check password", berth.Forbidden, "the password is wrong")
	}
	return nil
}
