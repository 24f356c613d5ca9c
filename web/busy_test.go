package web_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth/api"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/engine/enginetest"
	"github.com/berthhq/berth/store"
	"github.com/berthhq/berth/web"
	"github.com/berthhq/berth/web/webtest"
)

// TestBusyTeam renders every dashboard page of a team of 1,000 apps (the
// benchmark's data, webtest.Busy) through the real API and dashboard over
// a real store, and checks that each answers 200 in under 100 KB and shows
// what a person expects there; then it walks the apps list: its pages, its
// search and its project filter. How fast the pages render is the
// benchmark's business (go run ./bench --only dashboard), not a test's.
func TestBusyTeam(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "berth.db"), make([]byte, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	team, err := webtest.Seed(ctx, st, webtest.Busy, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dash, err := webtest.Open(st, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dash.Close)
	get := func(p webtest.Page) (int, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		dash.Handler.ServeHTTP(rec, team.Request(p))
		return rec.Code, rec.Body.String()
	}
	page := func(path string) string {
		t.Helper()
		code, body := get(webtest.Page{Path: path})
		if code != http.StatusOK {
			t.Fatalf("GET %s = %d:\n%.2000s", path, code, body)
		}
		return body
	}

	for _, p := range team.Pages() {
		t.Run(p.Name, func(t *testing.T) {
			code, body := get(p)
			if code != http.StatusOK {
				t.Fatalf("GET %s = %d:\n%.2000s", p.Path, code, body)
			}
			if len(body) >= 100<<10 {
				t.Errorf("GET %s: %d bytes, want under 100 KB", p.Path, len(body))
			}
			for _, want := range p.Shows {
				if !strings.Contains(body, want) {
					t.Errorf("GET %s does not show %q", p.Path, want)
				}
			}
		})
	}

	rowRE := regexp.MustCompile(`<tr data-app="([a-z0-9-]+)" data-app-id="app_[a-z0-9]+">`)
	rows := func(body string) []string {
		var out []string
		for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
			out = append(out, m[1])
		}
		return out
	}
	const per = 50
	pages := (len(team.Apps) + per - 1) / per

	// The first page: the first 50 apps by name, each with its status,
	// and a pager to the next.
	first := page("/apps")
	if got := rows(first); !slices.Equal(got, team.Apps[:per]) {
		t.Errorf("first page shows %v,\nwant %v", got, team.Apps[:per])
	}
	for _, want := range []string{fmt.Sprintf("Page 1 of %d", pages), `href="/apps?page=2" rel="next"`, fmt.Sprintf("%d apps, 1–50 shown", len(team.Apps)),
		`class="status s-live"`, `class="status s-failed"`, `id="apps-filter"`, `<option value="shop">shop</option>`} {
		if !strings.Contains(first, want) {
			t.Errorf("first page does not show %q", want)
		}
	}
	if strings.Contains(first, `rel="prev"`) {
		t.Error("first page links to a previous one")
	}
	// A middle page, the last page, and a page past the end (the last).
	if got := rows(page("/apps?page=3")); !slices.Equal(got, team.Apps[2*per:3*per]) {
		t.Errorf("page 3 shows %v", got)
	}
	last := page(fmt.Sprintf("/apps?page=%d", pages))
	if got := rows(last); !slices.Equal(got, team.Apps[(pages-1)*per:]) || strings.Contains(last, `rel="next"`) ||
		!strings.Contains(last, fmt.Sprintf(`href="/apps?page=%d" rel="prev"`, pages-1)) {
		t.Errorf("last page shows %v (or its pager is wrong)", got)
	}
	if got := rows(page("/apps?page=99999")); !slices.Equal(got, team.Apps[(pages-1)*per:]) {
		t.Errorf("a page past the end shows %v, want the last page", got)
	}
	if got := rows(page("/apps?page=-3")); !slices.Equal(got, team.Apps[:per]) {
		t.Errorf("page -3 shows %v, want the first page", got)
	}

	// Search: the apps whose name holds "catalog-api", paged, the search
	// kept in the pager's links.
	var want []string
	for _, a := range team.Apps {
		if strings.Contains(a, "catalog-api") {
			want = append(want, a)
		}
	}
	found := page("/apps?q=catalog-api")
	if got := rows(found); !slices.Equal(got, want[:min(per, len(want))]) {
		t.Errorf("search shows %v,\nwant %v", got, want)
	}
	if !strings.Contains(found, fmt.Sprintf("%d matching apps", len(want))) || !strings.Contains(found, `value="catalog-api"`) {
		t.Errorf("search page does not say how many apps match, or lost the search box's text")
	}
	if len(want) > per && !strings.Contains(found, `href="/apps?page=2&amp;q=catalog-api" rel="next"`) {
		t.Error("search pager drops the search")
	}
	none := page("/apps?q=no-such-app")
	if len(rows(none)) != 0 || !strings.Contains(none, `id="no-match"`) || !strings.Contains(none, "no-such-app") {
		t.Errorf("a search without results does not say so")
	}

	// Project filter: every row of the page is in that project, and
	// the count is the project's share.
	project := team.Projects[2]
	inProject := page("/apps?project=" + project)
	share := len(team.Apps) / len(team.Projects)
	if got := rows(inProject); len(got) != per || !strings.Contains(inProject, fmt.Sprintf("%d matching apps", share)) ||
		strings.Count(inProject, "<td>"+project+"</td>") != per || !strings.Contains(inProject, `<option value="`+project+`" selected>`) {
		t.Errorf("project %s: %d rows, want %d of %d matching, all in the project, the project selected", project, len(got), per, share)
	}
	// An unknown project: the list, empty, says so and keeps the form.
	code, body := get(webtest.Page{Path: "/apps?project=ghost"})
	if code != http.StatusNotFound || !strings.Contains(body, `no project &#34;ghost&#34;`) || !strings.Contains(body, `id="apps-filter"`) || len(rows(body)) != 0 {
		t.Errorf("unknown project: %d\n%.3000s", code, body)
	}
}

// TestOneAuthenticationPerPage checks that the API calls a page makes share
// the principal the first one found: after each in-process read, the
// page's shared authentication (auth.Shared) already holds the caller, so
// the next read does not authenticate again (before, each of a page's two
// to eight reads authenticated anew: five store reads each). The API
// answers them without indentation.
func TestOneAuthenticationPerPage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "berth.db"), make([]byte, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	team, err := webtest.Seed(ctx, st, webtest.Size{Apps: 3, Projects: 2, Deployments: 2, Env: 1, Domains: 1, LogLines: 5, Members: 1, Tokens: 1, Audit: 5}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	apiH := api.New(api.Config{Store: st, Engine: enginetest.New(t, st), InsecureCookies: true,
		Health: api.HealthProbe{Docker: func(context.Context) error { return nil }, DataDir: dir}}).Handler()
	var mu sync.Mutex
	var reads, unshared, indented []string
	spy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		apiH.ServeHTTP(rec, r)
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		if r.Method != http.MethodGet {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		reads = append(reads, r.URL.Path)
		// Nobody reads these answers but the dashboard's decoder: they
		// come unindented, at half the cost.
		if strings.Contains(rec.Header().Get("Content-Type"), "json") && strings.Contains(rec.Body.String(), "\n  ") {
			indented = append(indented, r.URL.Path)
		}
		// A principal already shared is returned without calling this.
		_, _ = auth.Shared(r, func() (*auth.Principal, error) {
			unshared = append(unshared, r.URL.Path)
			return nil, fmt.Errorf("not shared")
		})
	})
	h := web.New(web.Config{API: spy, Log: slog.New(slog.DiscardHandler)}).Handler()
	for _, p := range team.Pages() {
		if p.SignedOut {
			continue
		}
		reads, unshared, indented = nil, nil, nil
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, team.Request(p))
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s = %d: %.1000s", p.Path, rec.Code, rec.Body)
		}
		if len(reads) < 2 || len(unshared) > 0 {
			t.Errorf("GET %s: %d API reads, these not sharing the page's authentication: %v", p.Path, len(reads), unshared)
		}
		if len(indented) > 0 {
			t.Errorf("GET %s: the API indented its answers to %v", p.Path, indented)
		}
	}
}
