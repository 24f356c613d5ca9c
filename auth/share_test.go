package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/berthhq/berth"
)

func TestShared(t *testing.T) {
	calls := 0
	var fail error
	find := func() (*Principal, error) {
		calls++
		if fail != nil {
			return nil, fail
		}
		return &Principal{Team: &berth.Team{ID: "team_1"}, User: &berth.User{ID: "user_1", Name: "ann"}, Role: berth.RoleDeveloper,
			Session: &berth.Session{CSRF: "c"}, Projects: []string{"proj_1"}}, nil
	}
	req := func(ctx context.Context, method, cookie, authz string) *http.Request {
		r := httptest.NewRequestWithContext(ctx, method, "/api/v1/apps", nil)
		if cookie != "" {
			r.AddCookie(&http.Cookie{Name: SessionCookie, Value: cookie})
		}
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		return r
	}
	step := func(name string, r *http.Request, wantCalls int) *Principal {
		t.Helper()
		p, err := Shared(r, find)
		if calls != wantCalls {
			t.Fatalf("%s: find called %d times in all, want %d", name, calls, wantCalls)
		}
		if err != nil {
			if fail == nil {
				t.Fatalf("%s: %v", name, err)
			}
			return nil
		}
		return p
	}

	// Without ShareAuthentication every request authenticates.
	bg := context.Background()
	step("plain read", req(bg, "GET", "s1", ""), 1)
	step("plain read again", req(bg, "GET", "s1", ""), 2)

	ctx := ShareAuthentication(bg)
	first := step("first read", req(ctx, "GET", "s1", ""), 3)
	second := step("second read", req(ctx, "GET", "s1", ""), 3)
	step("HEAD", req(ctx, "HEAD", "s1", ""), 3)
	if second == first || second.User == first.User || second.Team == first.Team || second.Session == first.Session {
		t.Error("a shared principal is not a copy: one handler could change another's")
	}
	if second.User.Name != "ann" || len(second.Projects) != 1 || second.Projects[0] != "proj_1" {
		t.Errorf("shared principal = %+v", second)
	}
	second.Projects[0], second.User.Name = "proj_2", "mallory"
	if third := step("third read", req(ctx, "GET", "s1", ""), 3); third.Projects[0] != "proj_1" || third.User.Name != "ann" {
		t.Errorf("a handler's change to its copy reached the next request: %+v", third)
	}

	// Other credentials are not given the shared principal.
	step("another session", req(ctx, "GET", "s2", ""), 4)
	step("a token with the cookie", req(ctx, "GET", "s2", "Bearer berth_x"), 5)

	// A change authenticates afresh and is not kept; the next read
	// authenticates again, as the change may have been to the caller.
	step("read", req(ctx, "GET", "s1", ""), 6)
	step("change", req(ctx, "POST", "s1", ""), 7)
	step("change again", req(ctx, "DELETE", "s1", ""), 8)
	step("read after a change", req(ctx, "GET", "s1", ""), 9)
	step("read", req(ctx, "GET", "s1", ""), 9)

	// A failure is never kept.
	fail = berth.E("authenticate", berth.Unauthorized, "no")
	ctx = ShareAuthentication(bg)
	if _, err := Shared(req(ctx, "GET", "s3", ""), find); !errors.Is(err, fail) {
		t.Fatalf("err = %v", err)
	}
	fail = nil
	step("read after a failure", req(ctx, "GET", "s3", ""), 11)
	step("read", req(ctx, "GET", "s3", ""), 11)

	// Each ShareAuthentication is its own.
	step("another page", req(ShareAuthentication(bg), "GET", "s3", ""), 12)
}

func TestInProcess(t *testing.T) {
	if InProcess(context.Background()) || InProcess(httptest.NewRequest("GET", "/", nil).Context()) {
		t.Error("a plain context or a request's is in process")
	}
	if !InProcess(ShareAuthentication(context.Background())) {
		t.Error("ShareAuthentication's context is not in process")
	}
}
