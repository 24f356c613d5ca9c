package auth

import (
	"context"
	"crypto/sha256"
	"net/http"
	"slices"
	"sync"
)

// ShareAuthentication returns a context under which the requests that one
// program sends to berth's API in memory, all with the same credentials,
// authenticate once: the dashboard renders a page with several API reads
// and would otherwise read the session, team, user, role and 2FA facts
// from the store for each. Only code in the process can put a value in a
// request's context, so no request from the network can carry one; the
// dashboard makes one per page it serves and drops it with the request.
func ShareAuthentication(ctx context.Context) context.Context {
	return context.WithValue(ctx, shareKey{}, &shared{})
}

type shareKey struct{}

// InProcess reports whether ctx is one ShareAuthentication made: the
// context of a request that code in this process sent to the API (the
// dashboard rendering a page), not one from the network.
func InProcess(ctx context.Context) bool {
	_, ok := ctx.Value(shareKey{}).(*shared)
	return ok
}

// shared is the principal of the reads made so far under one
// ShareAuthentication, and the hash of the credentials it was found from.
type shared struct {
	mu  sync.Mutex
	key [sha256.Size]byte
	p   *Principal
}

// Shared returns the principal of request r from find, which authenticates
// it. Under ShareAuthentication, a read (GET, HEAD, OPTIONS) with the same
// credentials (Authorization header and session cookie) as an earlier one
// gets a copy of that one's principal without calling find; a change
// always calls find, its principal is not kept, and it makes the next read
// call find again, since the change may be to the caller's own role,
// session or second factor. Failures are never kept, and what find
// returns with one is returned as is. Everything decided
// per request (the CSRF token of a change, the permission of the route)
// is still checked by the caller and find.
func Shared(r *http.Request, find func() (*Principal, error)) (*Principal, error) {
	sh, _ := r.Context().Value(shareKey{}).(*shared)
	if sh == nil {
		return find()
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if !safeMethod(r.Method) {
		sh.p = nil
		return find()
	}
	key := credentials(r)
	if sh.p != nil && sh.key == key {
		return sh.p.clone(), nil
	}
	p, err := find()
	if err != nil {
		sh.p = nil
		return p, err
	}
	sh.key, sh.p = key, p.clone()
	return p, nil
}

// credentials hashes what a request authenticates with.
func credentials(r *http.Request) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(r.Header.Get("Authorization")))
	h.Write([]byte{0})
	if c, err := r.Cookie(SessionCookie); err == nil {
		h.Write([]byte(c.Value))
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	return key
}

// clone copies a principal deeply enough that a handler changing its copy
// changes no other.
func (p *Principal) clone() *Principal {
	c := *p
	if p.Team != nil {
		t := *p.Team
		c.Team = &t
	}
	if p.User != nil {
		u := *p.User
		c.User = &u
	}
	if p.Token != nil {
		t := *p.Token
		t.Scopes = slices.Clone(p.Token.Scopes)
		c.Token = &t
	}
	if p.Session != nil {
		s := *p.Session
		c.Session = &s
	}
	c.Projects = slices.Clone(p.Projects)
	return &c
}
