package store

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

func newPreview(f fixture, n int, at time.Time) (*berth.Preview, *berth.App) {
	child := newApp(f.team.ID, berth.PreviewAppName(f.app.Name, n))
	p := &berth.Preview{TeamID: f.team.ID, AppID: f.app.ID, Number: n, Provider: berth.GitHub, Repo: "acme/web",
		Title: "Add a feature", Author: "octocat", HeadRef: "feature", HeadSHA: strings.Repeat("a", 40),
		Status: berth.PreviewPending, StatusSHA: strings.Repeat("a", 40), Host: fmt.Sprintf("pr-%d.web.example.com", n),
		CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
	return p, child
}

func TestPreviewSettings(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		g := newFixture(t, s, "other")
		ps, err := s.PreviewSettings(ctx, f.team.ID, f.app.ID)
		must(t, err)
		if ps.Enabled || ps.MaxPreviews != berth.DefaultMaxPreviews || ps.TTL != berth.DefaultPreviewTTL {
			t.Errorf("settings of an app without any: %+v, want the defaults, off", ps)
		}
		_, err = s.PreviewSettings(ctx, g.team.ID, f.app.ID)
		wantKind(t, err, berth.NotFound)

		ps.Enabled, ps.MaxPreviews, ps.TTL = true, 2, 48*time.Hour
		ps.Env = map[string]string{"DATABASE_URL": "postgres://preview-db"}
		ps.StatusAPI, ps.StatusToken = "https://gitea.example.com/api/v1", "tok-sealed-value"
		ps.UpdatedAt = t0
		must(t, s.SetPreviewSettings(ctx, ps))
		got, err := s.PreviewSettings(ctx, f.team.ID, f.app.ID)
		must(t, err)
		if !got.Enabled || got.MaxPreviews != 2 || got.TTL != 48*time.Hour || got.Env["DATABASE_URL"] != "postgres://preview-db" ||
			got.StatusAPI != ps.StatusAPI || got.StatusToken != "tok-sealed-value" || !got.UpdatedAt.Equal(us(t0)) {
			t.Errorf("settings read back: %+v", got)
		}
		// Another team's app is not found, and its settings stay apart.
		wrong := *ps
		wrong.TeamID = g.team.ID
		wantKind(t, s.SetPreviewSettings(ctx, &wrong), berth.NotFound)
		bad := *ps
		bad.TTL = time.Second
		wantKind(t, s.SetPreviewSettings(ctx, &bad), berth.Invalid)

		// Env and token are sealed at rest, bound to the app.
		var env, token []byte
		must(t, s.w.QueryRowContext(ctx, `SELECT env, status_token FROM preview_settings`).Scan(&env, &token))
		if bytes.Contains(env, []byte("preview-db")) || bytes.Contains(token, []byte("tok-sealed")) || len(env) == 0 || len(token) == 0 {
			t.Error("preview env or token stored in clear")
		}

		// Clearing env and token stores NULLs.
		ps.Env, ps.StatusToken = nil, ""
		must(t, s.SetPreviewSettings(ctx, ps))
		got, err = s.PreviewSettings(ctx, f.team.ID, f.app.ID)
		must(t, err)
		if len(got.Env) != 0 || got.StatusToken != "" {
			t.Errorf("cleared settings: %+v", got)
		}
		// Deleting the app deletes its settings.
		must(t, s.DeleteApp(ctx, f.team.ID, f.app.ID))
		var n int
		must(t, s.w.QueryRowContext(ctx, `SELECT COUNT(*) FROM preview_settings`).Scan(&n))
		if n != 0 {
			t.Errorf("%d settings rows left after the app was deleted", n)
		}
	})
}

func TestPreviews(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		g := newFixture(t, s, "other")
		p, child := newPreview(f, 7, t0)
		must(t, s.CreatePreview(ctx, p, child, 2))
		if p.ID == "" || p.ChildAppID != child.ID || p.ChildApp != "web-pr-7" || child.ProjectID != f.app.ProjectID {
			t.Fatalf("created %+v, child %+v", p, child)
		}
		got, err := s.Preview(ctx, f.team.ID, f.app.ID, 7)
		must(t, err)
		if got.ChildApp != "web-pr-7" || got.HeadSHA != p.HeadSHA || got.Host != p.Host || got.Status != berth.PreviewPending ||
			!got.CreatedAt.Equal(us(t0)) || !got.ExpiresAt.Equal(us(t0.Add(time.Hour))) || got.ApprovedAt != nil || got.Fork {
			t.Errorf("read back %+v", got)
		}
		if byChild, err := s.PreviewByChild(ctx, f.team.ID, child.ID); err != nil || byChild.ID != p.ID {
			t.Errorf("by child: %+v, %v", byChild, err)
		}
		_, err = s.PreviewByChild(ctx, f.team.ID, f.app.ID)
		wantKind(t, err, berth.NotFound)
		// The child has its one domain; the team's app list hides it.
		doms, err := s.Domains(ctx, f.team.ID, child.ID)
		must(t, err)
		if len(doms) != 1 || doms[0].Host != "pr-7.web.example.com" {
			t.Errorf("child domains %+v", doms)
		}
		apps, err := s.Apps(ctx, f.team.ID)
		must(t, err)
		if len(apps) != 1 || apps[0].Name != "web" {
			t.Errorf("apps %+v, want the parent only", apps)
		}
		if all, err := s.AllApps(ctx); err != nil || len(all) != 3 {
			t.Errorf("all apps: %d, %v; want both parents and the child", len(all), err)
		}

		// Tenancy: another team sees nothing.
		_, err = s.Preview(ctx, g.team.ID, f.app.ID, 7)
		wantKind(t, err, berth.NotFound)
		if l, err := s.Previews(ctx, g.team.ID, f.app.ID); err != nil || len(l) != 0 {
			t.Errorf("other team lists %+v, %v", l, err)
		}
		wantKind(t, s.ClosePreview(ctx, g.team.ID, p.ID, t0), berth.NotFound)
		op, oc := newPreview(g, 1, t0)
		op.AppID = f.app.ID // another team's parent
		wantKind(t, s.CreatePreview(ctx, op, oc, 5), berth.NotFound)

		// The same pull request, a taken host: conflicts, nothing half-made.
		dup, dupChild := newPreview(f, 7, t0)
		dupChild.Name = "web-pr-7b"
		dup.Host = "pr-7b.web.example.com"
		wantKind(t, s.CreatePreview(ctx, dup, dupChild, 5), berth.Conflict)
		taken, takenChild := newPreview(f, 8, t0)
		taken.Host = p.Host
		wantKind(t, s.CreatePreview(ctx, taken, takenChild, 5), berth.Conflict)
		if _, err := s.App(ctx, f.team.ID, takenChild.Name); !berth.IsKind(err, berth.NotFound) {
			t.Errorf("a refused preview left its child app: %v", err)
		}

		// The cap counts previews that are not closing.
		p8, c8 := newPreview(f, 8, t0.Add(time.Minute))
		must(t, s.CreatePreview(ctx, p8, c8, 2))
		p9, c9 := newPreview(f, 9, t0)
		if err := s.CreatePreview(ctx, p9, c9, 2); !errors.Is(err, ErrPreviewLimit) {
			t.Fatalf("third preview with a cap of 2: %v, want ErrPreviewLimit", err)
		}
		if _, err := s.App(ctx, f.team.ID, c9.Name); !berth.IsKind(err, berth.NotFound) {
			t.Errorf("the refused preview left its child app: %v", err)
		}
		if l, err := s.Previews(ctx, f.team.ID, f.app.ID); err != nil || len(l) != 2 || l[0].Number != 7 || l[1].Number != 8 {
			t.Errorf("previews %+v, %v", l, err)
		}

		// A push: new head, pending, later expiry.
		p.HeadSHA, p.Title, p.Fork = strings.Repeat("b", 40), "Renamed", true
		p.UpdatedAt, p.ExpiresAt = t0.Add(time.Hour), t0.Add(2*time.Hour)
		must(t, s.UpdatePreviewHead(ctx, p))
		must(t, s.SetPreviewStatus(ctx, f.team.ID, p.ID, berth.PreviewFailed, strings.Repeat("b", 40), "health check failed", t0.Add(time.Hour)))
		got, err = s.Preview(ctx, f.team.ID, f.app.ID, 7)
		must(t, err)
		if got.HeadSHA != p.HeadSHA || got.Title != "Renamed" || !got.Fork || got.Status != berth.PreviewFailed ||
			got.Message != "health check failed" || !got.ExpiresAt.Equal(us(t0.Add(2*time.Hour))) {
			t.Errorf("after a push and a failure: %+v", got)
		}
		// Approval is of the head only.
		wantKind(t, s.ApprovePreview(ctx, f.team.ID, p.ID, strings.Repeat("a", 40), "alice", t0), berth.Conflict)
		must(t, s.ApprovePreview(ctx, f.team.ID, p.ID, p.HeadSHA, "alice", t0.Add(time.Hour)))
		got, _ = s.Preview(ctx, f.team.ID, f.app.ID, 7)
		if got.ApprovedSHA != p.HeadSHA || got.ApprovedBy != "alice" || got.ApprovedAt == nil || got.Status != berth.PreviewPending || got.Message != "" {
			t.Errorf("after approval: %+v", got)
		}
		must(t, s.RecordPreviewPost(ctx, f.team.ID, p.ID, t0, "github answered 401"))
		got, _ = s.Preview(ctx, f.team.ID, f.app.ID, 7)
		if got.PostedAt == nil || got.PostError != "github answered 401" {
			t.Errorf("post record: %+v", got)
		}

		// Settings move the expiry to last update + TTL.
		ps := berth.DefaultPreviewSettings(f.team.ID, f.app.ID)
		ps.TTL = 3 * time.Hour
		must(t, s.SetPreviewSettings(ctx, ps))
		got, _ = s.Preview(ctx, f.team.ID, f.app.ID, 7)
		if !got.ExpiresAt.Equal(us(t0.Add(4 * time.Hour))) {
			t.Errorf("expiry after the TTL changed: %s, want %s", got.ExpiresAt, us(t0.Add(4*time.Hour)))
		}

		// Sweeping: #8 expires at t0+1m+3h; #7 at t0+4h.
		sweep, err := s.PreviewsToSweep(ctx, t0.Add(3*time.Hour+2*time.Minute), t0.Add(-time.Hour))
		must(t, err)
		if len(sweep) != 1 || sweep[0].Number != 8 {
			t.Errorf("to sweep: %+v, want #8", sweep)
		}
		// Closing: updates refused, the cap frees a slot, a stuck close is swept again.
		must(t, s.ClosePreview(ctx, f.team.ID, p8.ID, t0.Add(time.Minute)))
		wantKind(t, s.SetPreviewStatus(ctx, f.team.ID, p8.ID, berth.PreviewLive, p8.HeadSHA, "", t0), berth.Conflict)
		wantKind(t, s.UpdatePreviewHead(ctx, p8), berth.Conflict)
		wantKind(t, s.ApprovePreview(ctx, f.team.ID, p8.ID, p8.HeadSHA, "alice", t0), berth.Conflict)
		must(t, s.CreatePreview(ctx, p9, c9, 2))
		sweep, err = s.PreviewsToSweep(ctx, t0, t0.Add(2*time.Minute))
		must(t, err)
		if len(sweep) != 1 || sweep[0].ID != p8.ID || sweep[0].Status != berth.PreviewClosing {
			t.Errorf("to sweep: %+v, want the closing #8", sweep)
		}

		// Deleting the child deletes its preview; deleting the parent, the rest.
		must(t, s.DeleteApp(ctx, f.team.ID, c8.ID))
		_, err = s.Preview(ctx, f.team.ID, f.app.ID, 8)
		wantKind(t, err, berth.NotFound)
		must(t, s.DeleteApp(ctx, f.team.ID, f.app.ID))
		var n int
		must(t, s.w.QueryRowContext(ctx, `SELECT COUNT(*) FROM previews`).Scan(&n))
		if n != 0 {
			t.Errorf("%d previews left after their parent was deleted", n)
		}
	})
}

// TestPreviewCapConcurrent opens more pull requests at once than the cap
// allows, from two stores (two processes): exactly the cap gets previews.
func TestPreviewCapConcurrent(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		ctx := ctxT(t)
		s1 := openT(t, dsn, testKey)
		s2 := openT(t, dsn, testKey)
		f := newFixture(t, s1, "acme")
		const cap, tries = 3, 12
		var wg sync.WaitGroup
		errs := make([]error, tries)
		for i := range tries {
			wg.Go(func() {
				s := s1
				if i%2 == 1 {
					s = s2
				}
				p, c := newPreview(f, i+1, t0)
				errs[i] = s.CreatePreview(ctx, p, c, cap)
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, ErrPreviewLimit):
				t.Errorf("unexpected error: %v", err)
			}
		}
		l, err := s1.Previews(ctx, f.team.ID, f.app.ID)
		must(t, err)
		if ok != cap || len(l) != cap {
			t.Errorf("%d created, %d stored; want %d", ok, len(l), cap)
		}
	})
}
