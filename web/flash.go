package web

import (
	"crypto/rand"
	"crypto/sha256"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/berthhq/berth/auth"
)

const (
	// flashCookie names the cookie that points a browser at its flash.
	flashCookie = "berth_flash"
	// flashTTL is how long a flash waits for the page it is kept for.
	flashTTL = 5 * time.Minute
	// maxFlashes bounds the flashes kept at once.
	maxFlashes = 10000
)

// flashes keep the outcome of a form that succeeded between its POST and
// the GET its 303 leads to (POST/redirect/GET), so that reloading the page
// shown sends no form again. A flash may hold a secret shown once (a new
// API token, a TOTP secret): it is kept in memory, never in a cookie or a
// URL; the browser's cookie only names it. It is read once, on the page it
// is kept for, by the session that sent the form, within flashTTL. A
// restart of the server loses the flashes in flight: their pages then show
// without them.
type flashes struct {
	mu   sync.Mutex
	held map[string]heldFlash
}

type heldFlash struct {
	f       *flash
	path    string   // the page it is for
	session [32]byte // hash of the session cookie that sent the form
	expires time.Time
}

// sessionOf is the hash of the browser's session cookie ("" hashed when it
// has none): a flash is shown to the session that made it only.
func sessionOf(r *http.Request) [32]byte {
	var secret string
	if c, err := r.Cookie(auth.SessionCookie); err == nil {
		secret = c.Value
	}
	return sha256.Sum256([]byte(secret))
}

// flashTo keeps f for the page at next and returns next, to redirect to.
func (s *Server) flashTo(w http.ResponseWriter, r *http.Request, next string, f *flash) string {
	id := rand.Text()
	now := s.now()
	s.flashes.mu.Lock()
	for k, h := range s.flashes.held {
		if now.After(h.expires) {
			delete(s.flashes.held, k)
		}
	}
	for k := range s.flashes.held {
		if len(s.flashes.held) < maxFlashes {
			break
		}
		delete(s.flashes.held, k) // any one: only a flood of forms gets here
	}
	var path string
	if u, err := url.Parse(next); err == nil {
		path = u.Path
	}
	s.flashes.held[id] = heldFlash{f: f, path: path, session: sessionOf(r), expires: now.Add(flashTTL)}
	s.flashes.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: id, Path: "/", MaxAge: int(flashTTL / time.Second),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	return next
}

// takeFlash returns the flash kept for this page and this session, once,
// and clears the browser's cookie; nil when there is none.
func (s *Server) takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	s.flashes.mu.Lock()
	h, ok := s.flashes.held[c.Value]
	switch {
	case ok && h.path != r.URL.Path:
		s.flashes.mu.Unlock()
		return nil // kept for another page: the redirect has not landed yet
	case ok && h.session == sessionOf(r):
		delete(s.flashes.held, c.Value)
	default:
		ok = false // another session's: not shown here, nor taken
	}
	s.flashes.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	if !ok || s.now().After(h.expires) {
		return nil
	}
	f := *h.f
	f.Status = http.StatusOK // the page itself, shown by a GET
	return &f
}
