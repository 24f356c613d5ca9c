package store

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

func TestApps(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		other := newFixture(t, s, "other") // also has an app named "web"

		got, err := s.App(ctx, f.team.ID, "web")
		must(t, err)
		want := *f.app
		want.CreatedAt, want.UpdatedAt = t0.UTC().Truncate(time.Microsecond), t0.UTC().Truncate(time.Microsecond)
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("App =\n%+v\nwant\n%+v", *got, want)
		}
		byID, err := s.AppByID(ctx, f.team.ID, f.app.ID)
		must(t, err)
		if !reflect.DeepEqual(byID, got) {
			t.Fatalf("AppByID = %+v", byID)
		}

		wantKind(t, s.CreateApp(ctx, newApp(f.team.ID, "web")), berth.Conflict)
		wantKind(t, s.CreateApp(ctx, newApp("team_nope", "web")), berth.NotFound)
		must(t, s.CreateApp(ctx, newApp(f.team.ID, "api")))
		apps, err := s.Apps(ctx, f.team.ID)
		must(t, err)
		if len(apps) != 2 || apps[0].Name != "api" || apps[1].Name != "web" {
			t.Fatalf("Apps = %+v", apps)
		}

		got.Replicas, got.Health.Path = 3, "/healthz"
		got.Source = berth.Source{Kind: berth.SourceImage, Image: "nginx:1.27"}
		got.Volumes = nil
		got.UpdatedAt = t0.Add(time.Hour)
		must(t, s.UpdateApp(ctx, got))
		again, err := s.App(ctx, f.team.ID, "web")
		must(t, err)
		if !reflect.DeepEqual(again, got) {
			t.Fatalf("after UpdateApp =\n%+v\nwant\n%+v", again, got)
		}
		if o, err := s.App(ctx, other.team.ID, "web"); err != nil || o.Replicas != 1 {
			t.Fatalf("the other team's app changed: %+v, %v", o, err)
		}
		nope := *got
		nope.ID = "app_nope"
		wantKind(t, s.UpdateApp(ctx, &nope), berth.NotFound)

		_, err = s.App(ctx, f.team.ID, "nope")
		wantKind(t, err, berth.NotFound)
		if err.Error() != `get app: app "nope" not found` {
			t.Errorf("error text %q", err)
		}
	})
}

func TestDeleteAppCascades(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		keep := newFixture(t, s, "keep")
		for _, x := range []fixture{f, keep} {
			must(t, s.AddDomain(ctx, &berth.Domain{TeamID: x.team.ID, AppID: x.app.ID, Host: x.team.Name + ".example.com"}))
			must(t, s.SetEnv(ctx, x.team.ID, x.app.ID, map[string]string{"A": "1"}))
			d := &berth.Deployment{TeamID: x.team.ID, AppID: x.app.ID}
			must(t, s.CreateDeployment(ctx, d))
			must(t, s.AppendLog(ctx, x.team.ID, d.ID, t0, "line"))
			must(t, s.CreateRelease(ctx, &berth.Release{TeamID: x.team.ID, AppID: x.app.ID, Image: "img", DeploymentID: d.ID}))
		}
		wantKind(t, s.DeleteApp(ctx, keep.team.ID, f.app.ID), berth.NotFound)
		must(t, s.DeleteApp(ctx, f.team.ID, f.app.ID))
		wantKind(t, s.DeleteApp(ctx, f.team.ID, f.app.ID), berth.NotFound)
		for _, table := range []string{"apps", "domains", "env_vars", "deployments", "deployment_logs", "releases"} {
			var n int
			must(t, s.w.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n))
			if n != 1 {
				t.Errorf("%s has %d rows after the delete, want 1 (the other team's)", table, n)
			}
		}
	})
}

func TestDomains(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		other := newFixture(t, s, "other")
		api := newApp(f.team.ID, "api")
		must(t, s.CreateApp(ctx, api))

		if ds, err := s.Domains(ctx, f.team.ID, f.app.ID); err != nil || len(ds) != 0 {
			t.Fatalf("Domains of a new app = %v, %v", ds, err)
		}
		d := &berth.Domain{TeamID: f.team.ID, AppID: f.app.ID, Host: "WWW.Example.com.", CreatedAt: t0}
		must(t, s.AddDomain(ctx, d))
		if d.Host != "www.example.com" || d.ID == "" {
			t.Fatalf("AddDomain left %+v", d)
		}
		must(t, s.AddDomain(ctx, &berth.Domain{TeamID: f.team.ID, AppID: f.app.ID, Host: "a.example.com"}))
		for name, dom := range map[string]*berth.Domain{
			"same app":   {TeamID: f.team.ID, AppID: f.app.ID, Host: "www.example.com"},
			"other app":  {TeamID: f.team.ID, AppID: api.ID, Host: "www.example.com"},
			"other team": {TeamID: other.team.ID, AppID: other.app.ID, Host: "Www.example.com"},
		} {
			err := s.AddDomain(ctx, dom)
			wantKind(t, err, berth.Conflict)
			if berth.ErrorMessage(err) != `domain "www.example.com" is already in use` {
				t.Errorf("%s: message %q", name, berth.ErrorMessage(err))
			}
		}
		wantKind(t, s.AddDomain(ctx, &berth.Domain{TeamID: f.team.ID, AppID: f.app.ID, Host: " "}), berth.Invalid)

		ds, err := s.Domains(ctx, f.team.ID, f.app.ID)
		must(t, err)
		if len(ds) != 2 || ds[0].Host != "a.example.com" || ds[1].Host != "www.example.com" ||
			ds[1].ID != d.ID || !ds[1].CreatedAt.Equal(us(t0)) || ds[1].AppID != f.app.ID || ds[1].TeamID != f.team.ID {
			t.Fatalf("Domains = %+v", ds)
		}
		_, err = s.Domains(ctx, f.team.ID, "app_nope")
		wantKind(t, err, berth.NotFound)

		wantKind(t, s.RemoveDomain(ctx, f.team.ID, api.ID, "www.example.com"), berth.NotFound)
		must(t, s.RemoveDomain(ctx, f.team.ID, f.app.ID, "WWW.example.com"))
		wantKind(t, s.RemoveDomain(ctx, f.team.ID, f.app.ID, "www.example.com"), berth.NotFound)
		// Once free, another team may take the host.
		must(t, s.AddDomain(ctx, &berth.Domain{TeamID: other.team.ID, AppID: other.app.ID, Host: "www.example.com"}))
	})
}

func TestEnv(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		if env, err := s.Env(ctx, f.team.ID, f.app.ID); err != nil || len(env) != 0 {
			t.Fatalf("Env of a new app = %v, %v", env, err)
		}
		must(t, s.SetEnv(ctx, f.team.ID, f.app.ID, map[string]string{"B": "two", "A": "one", "EMPTY": ""}))
		must(t, s.SetEnv(ctx, f.team.ID, f.app.ID, map[string]string{"B": "zwei", "C": "multi\nline ünïcode"}))
		must(t, s.SetEnv(ctx, f.team.ID, f.app.ID, nil))
		env, err := s.Env(ctx, f.team.ID, f.app.ID)
		must(t, err)
		got := map[string]string{}
		var keys []string
		for _, e := range env {
			got[e.Key] = e.Value
			keys = append(keys, e.Key)
			if e.UpdatedAt.IsZero() {
				t.Errorf("%s has no UpdatedAt", e.Key)
			}
		}
		want := map[string]string{"A": "one", "B": "zwei", "C": "multi\nline ünïcode", "EMPTY": ""}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(keys, []string{"A", "B", "C", "EMPTY"}) {
			t.Fatalf("Env = %v (order %v)", got, keys)
		}
		must(t, s.UnsetEnv(ctx, f.team.ID, f.app.ID, []string{"A", "NOT_SET"}))
		env, err = s.Env(ctx, f.team.ID, f.app.ID)
		must(t, err)
		if len(env) != 3 || env[0].Key != "B" {
			t.Fatalf("after UnsetEnv: %+v", env)
		}
		for _, bad := range []map[string]string{{"1X": "v"}, {"BERTH_X": "v"}, {"X": "nul\x00"}, {"": "v"}} {
			wantKind(t, s.SetEnv(ctx, f.team.ID, f.app.ID, bad), berth.Invalid)
		}
		many := map[string]string{}
		for i := range berth.MaxEnvVars {
			many["K"+string(rune('A'+i%26))+string(rune('A'+i/26))] = "v"
		}
		wantKind(t, s.SetEnv(ctx, f.team.ID, f.app.ID, many), berth.Invalid)
		if env, _ := s.Env(ctx, f.team.ID, f.app.ID); len(env) != 3 {
			t.Fatalf("a refused SetEnv changed the env: %d vars", len(env))
		}
		wantKind(t, s.SetEnv(ctx, f.team.ID, "app_nope", map[string]string{"A": "1"}), berth.NotFound)
		wantKind(t, s.UnsetEnv(ctx, f.team.ID, "app_nope", []string{"A"}), berth.NotFound)
		_, err = s.Env(ctx, f.team.ID, "app_nope")
		wantKind(t, err, berth.NotFound)
	})
}

// TestTenancy proves that a team never reaches another team's objects, by
// ID or by name: every attempt is NotFound and changes nothing.
func TestTenancy(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		a := newFixture(t, s, "alpha")
		b := newFixture(t, s, "beta")
		must(t, s.AddDomain(ctx, &berth.Domain{TeamID: a.team.ID, AppID: a.app.ID, Host: "alpha.example.com"}))
		must(t, s.SetEnv(ctx, a.team.ID, a.app.ID, map[string]string{"SECRET": "alpha-only"}))
		dep := &berth.Deployment{TeamID: a.team.ID, AppID: a.app.ID, CreatedAt: t0}
		must(t, s.CreateDeployment(ctx, dep))
		must(t, s.AppendLog(ctx, a.team.ID, dep.ID, t0, "alpha log"))
		rel := &berth.Release{TeamID: a.team.ID, AppID: a.app.ID, Image: "alpha:1", DeploymentID: dep.ID}
		must(t, s.CreateRelease(ctx, rel))

		only := newApp(a.team.ID, "alpha-only")
		must(t, s.CreateApp(ctx, only))

		B := b.team.ID
		attempts := map[string]func() error{
			"App by name": func() error { _, err := s.App(ctx, B, "alpha-only"); return err },
			"AppByID":     func() error { _, err := s.AppByID(ctx, B, a.app.ID); return err },
			"UpdateApp": func() error {
				x := *a.app
				x.TeamID, x.Replicas = B, 9
				return s.UpdateApp(ctx, &x)
			},
			"DeleteApp": func() error { return s.DeleteApp(ctx, B, a.app.ID) },
			"AddDomain": func() error {
				return s.AddDomain(ctx, &berth.Domain{TeamID: B, AppID: a.app.ID, Host: "evil.example.com"})
			},
			"Domains":      func() error { _, err := s.Domains(ctx, B, a.app.ID); return err },
			"RemoveDomain": func() error { return s.RemoveDomain(ctx, B, a.app.ID, "alpha.example.com") },
			"SetEnv":       func() error { return s.SetEnv(ctx, B, a.app.ID, map[string]string{"SECRET": "x"}) },
			"UnsetEnv":     func() error { return s.UnsetEnv(ctx, B, a.app.ID, []string{"SECRET"}) },
			"Env":          func() error { _, err := s.Env(ctx, B, a.app.ID); return err },
			"CreateDeployment": func() error {
				return s.CreateDeployment(ctx, &berth.Deployment{TeamID: B, AppID: a.app.ID})
			},
			"Deployment":  func() error { _, err := s.Deployment(ctx, B, dep.ID); return err },
			"Deployments": func() error { _, err := s.Deployments(ctx, B, a.app.ID, 10); return err },
			"LiveDeployment": func() error {
				_, err := s.LiveDeployment(ctx, B, a.app.ID)
				return err
			},
			"MoveDeployment": func() error {
				return s.MoveDeployment(ctx, B, dep.ID, berth.StatusQueued, berth.StatusFetching, t0, "")
			},
			"SetDeploymentCommit":  func() error { return s.SetDeploymentCommit(ctx, B, dep.ID, "evil") },
			"SetDeploymentRelease": func() error { return s.SetDeploymentRelease(ctx, B, dep.ID, "rel_evil") },
			"RequestCancel":        func() error { return s.RequestCancel(ctx, B, dep.ID) },
			"AppendLog":            func() error { return s.AppendLog(ctx, B, dep.ID, t0, "evil") },
			"Logs":                 func() error { _, err := s.Logs(ctx, B, dep.ID, 0, 10); return err },
			"CreateRelease": func() error {
				return s.CreateRelease(ctx, &berth.Release{TeamID: B, AppID: a.app.ID, Image: "evil"})
			},
			"Release":     func() error { _, err := s.Release(ctx, B, rel.ID); return err },
			"Releases":    func() error { _, err := s.Releases(ctx, B, a.app.ID, 10); return err },
			"DeleteToken": func() error { return s.DeleteToken(ctx, B, "tok_x") },
		}
		for name, try := range attempts {
			t.Run(name, func(t *testing.T) { wantKind(t, try(), berth.NotFound) })
		}
		// Both teams have an app named "web": each gets its own.
		if got, err := s.App(ctx, B, "web"); err != nil || got.ID != b.app.ID {
			t.Fatalf("team beta's \"web\" = %+v, %v", got, err)
		}

		// Nothing of alpha's changed.
		app, err := s.AppByID(ctx, a.team.ID, a.app.ID)
		must(t, err)
		if app.Replicas != 1 {
			t.Errorf("alpha's app changed: replicas %d", app.Replicas)
		}
		if ds, _ := s.Domains(ctx, a.team.ID, a.app.ID); len(ds) != 1 {
			t.Errorf("alpha's domains: %v", ds)
		}
		if env, _ := s.Env(ctx, a.team.ID, a.app.ID); len(env) != 1 || env[0].Value != "alpha-only" {
			t.Errorf("alpha's env: %v", env)
		}
		d, err := s.Deployment(ctx, a.team.ID, dep.ID)
		must(t, err)
		if d.Status != berth.StatusQueued || d.Commit != "" || d.ReleaseID != "" || d.CancelRequested {
			t.Errorf("alpha's deployment changed: %+v", d)
		}
		if logs, _ := s.Logs(ctx, a.team.ID, dep.ID, 0, 0); len(logs) != 1 {
			t.Errorf("alpha's logs: %v", logs)
		}
		if ds, _ := s.Deployments(ctx, a.team.ID, a.app.ID, 0); len(ds) != 1 {
			t.Errorf("alpha has %d deployments", len(ds))
		}
		if rs, _ := s.Releases(ctx, a.team.ID, a.app.ID, 0); len(rs) != 1 {
			t.Errorf("alpha has %d releases", len(rs))
		}
	})
}

func TestFindApps(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme") // has "web", in the default project
		other := newFixture(t, s, "other")
		must(t, s.CreateApp(ctx, newApp(other.team.ID, "shop-api")))
		shop := &berth.Project{TeamID: f.team.ID, Name: "shop", CreatedAt: t0}
		must(t, s.CreateProject(ctx, shop))
		def, err := s.Project(ctx, f.team.ID, berth.DefaultProject)
		must(t, err)
		// 25 more apps: shop-api-00…, shop-web-01…, odd ones in "shop".
		for i := range 25 {
			a := newApp(f.team.ID, fmt.Sprintf("shop-%s-%02d", []string{"api", "web"}[i%2], i))
			if i%2 == 1 {
				a.ProjectID = shop.ID
			}
			must(t, s.CreateApp(ctx, a))
		}
		// A name with LIKE's wildcards would match anything if they
		// were not escaped.
		must(t, s.CreateApp(ctx, newApp(f.team.ID, "x-percent")))

		names := func(apps []berth.App) []string {
			var out []string
			for _, a := range apps {
				out = append(out, a.Name)
			}
			return out
		}
		for _, tc := range []struct {
			name  string
			f     berth.AppFilter
			want  []string // names, in order
			total int
		}{
			{"all", berth.AppFilter{}, nil, 27},
			{"first page", berth.AppFilter{Limit: 3}, []string{"shop-api-00", "shop-api-02", "shop-api-04"}, 27},
			{"second page", berth.AppFilter{Limit: 3, Offset: 3}, []string{"shop-api-06", "shop-api-08", "shop-api-10"}, 27},
			{"last page", berth.AppFilter{Limit: 10, Offset: 20}, []string{"shop-web-15", "shop-web-17", "shop-web-19", "shop-web-21", "shop-web-23", "web", "x-percent"}, 27},
			{"offset without limit", berth.AppFilter{Offset: 25}, []string{"web", "x-percent"}, 27},
			{"past the end", berth.AppFilter{Limit: 10, Offset: 27}, nil, 27},
			{"query", berth.AppFilter{Query: "web"}, []string{"shop-web-01", "shop-web-03", "shop-web-05", "shop-web-07", "shop-web-09", "shop-web-11", "shop-web-13", "shop-web-15", "shop-web-17", "shop-web-19", "shop-web-21", "shop-web-23", "web"}, 13},
			{"query, any case, paged", berth.AppFilter{Query: "API-1", Limit: 2}, []string{"shop-api-10", "shop-api-12"}, 5},
			{"wildcards are literal", berth.AppFilter{Query: "%"}, nil, 0},
			{"underscore is literal", berth.AppFilter{Query: "shop_"}, nil, 0},
			{"project", berth.AppFilter{Project: shop.ID, Limit: 2}, []string{"shop-web-01", "shop-web-03"}, 12},
			{"project and query", berth.AppFilter{Project: def.ID, Query: "web"}, []string{"web"}, 1},
			{"names", berth.AppFilter{Names: []string{"web", "shop-api-00", "nope"}}, []string{"shop-api-00", "web"}, 2},
			{"no names", berth.AppFilter{Names: []string{}}, nil, 0},
			{"visible projects", berth.AppFilter{Visible: []string{shop.ID}, Query: "web-0"}, []string{"shop-web-01", "shop-web-03", "shop-web-05", "shop-web-07", "shop-web-09"}, 5},
			{"no visible project", berth.AppFilter{Visible: []string{}}, nil, 0},
			{"another team's app is never found", berth.AppFilter{Names: []string{"shop-api"}}, nil, 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				apps, total, err := s.FindApps(ctx, f.team.ID, tc.f)
				must(t, err)
				if total != tc.total {
					t.Errorf("total = %d, want %d", total, tc.total)
				}
				if tc.want == nil && tc.name == "all" {
					if len(apps) != 27 || apps[0].Name != "shop-api-00" || apps[26].Name != "x-percent" {
						t.Errorf("all: %v", names(apps))
					}
					return
				}
				if got := names(apps); !slices.Equal(got, tc.want) {
					t.Errorf("apps = %v, want %v", got, tc.want)
				}
			})
		}
		_, _, err = s.FindApps(ctx, f.team.ID, berth.AppFilter{Limit: -1})
		wantKind(t, err, berth.Invalid)
	})
}
