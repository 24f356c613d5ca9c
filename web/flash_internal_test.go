package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/berthhq/berth/auth"
)

// TestFlashOnceInTime checks that a flash is shown on its own page, to
// its own session, once, and not after flashTTL.
func TestFlashOnceInTime(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := New(Config{API: http.NotFoundHandler(), Now: func() time.Time { return now }})
	request := func(method, path, session, flashID string) *http.Request {
		r := httptest.NewRequest(method, path, nil)
		r.AddCookie(&http.Cookie{Name: auth.SessionCookie, Value: session})
		if flashID != "" {
			r.AddCookie(&http.Cookie{Name: flashCookie, Value: flashID})
		}
		return r
	}
	keep := func() string {
		w := httptest.NewRecorder()
		if next := s.flashTo(w, request("POST", "/tokens", "alice", ""), "/tokens?x=1#new", &flash{Notice: "hi"}); next != "/tokens?x=1#new" {
			t.Fatalf("flashTo = %q", next)
		}
		for _, c := range w.Result().Cookies() {
			if c.Name == flashCookie && c.Value != "" && c.HttpOnly {
				return c.Value
			}
		}
		t.Fatal("no HttpOnly flash cookie")
		return ""
	}
	take := func(path, session, id string) *flash {
		return s.takeFlash(httptest.NewRecorder(), request("GET", path, session, id))
	}

	id := keep()
	if f := take("/apps", "alice", id); f != nil {
		t.Error("shown on another page")
	}
	if f := take("/tokens", "mallory", id); f != nil {
		t.Error("shown to another session")
	}
	f := take("/tokens", "alice", id)
	if f == nil || f.Notice != "hi" || f.Status != http.StatusOK {
		t.Fatalf("take = %+v, want the notice with status 200", f)
	}
	if f := take("/tokens", "alice", id); f != nil {
		t.Error("shown twice")
	}

	id = keep()
	keep() // never taken
	now = now.Add(flashTTL + time.Second)
	if f := take("/tokens", "alice", id); f != nil {
		t.Error("shown after flashTTL")
	}
	// Keeping a flash drops the expired ones.
	s.flashTo(httptest.NewRecorder(), request("POST", "/tokens", "alice", ""), "/tokens", &flash{})
	if n := len(s.flashes.held); n != 1 {
		t.Errorf("%d flashes held, want the new one only", n)
	}
}
