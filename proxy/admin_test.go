package proxy_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAdminAPI(t *testing.T) {
	p := newProxy(t, "")
	srv := httptest.NewServer(p.Admin())
	t.Cleanup(srv.Close)
	healthy := newBackend(t, "ok")
	dead := deadAddr(t)
	big := `{"app":"a","hosts":["` + strings.Repeat("x", 1<<20) + `"]}`

	// Steps run in order: some depend on routes set by earlier ones.
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		code   int
		want   string // substring of the answer
	}{
		{"health", "GET", "/v1/health", "", 200, `"status":"ok"`},
		{"no routes", "GET", "/v1/routes", "", 200, `[]`},
		{"set route", "PUT", "/v1/routes/app-a", `{"app":"app-a","hosts":["a.example.com","a.example.com"],"targets":["127.0.0.1:8080","web_1:80","[::1]:80"]}`, 200,
			`{"app":"app-a","hosts":["a.example.com"],"targets":["127.0.0.1:8080","web_1:80","[::1]:80"]}`},
		{"set route without hosts", "PUT", "/v1/routes/app-b", `{"app":"app-b"}`, 200, `"hosts":[]`},
		{"conflict", "PUT", "/v1/routes/app-c", `{"app":"app-c","hosts":["a.example.com"]}`, 409, `already routed to app app-a`},
		{"list", "GET", "/v1/routes", "", 200, `"app":"app-b"`},
		{"bad json", "PUT", "/v1/routes/app-a", `{"app":`, 400, `"error"`},
		{"two values", "PUT", "/v1/routes/app-a", `{"app":"app-a"} {}`, 400, `more than one`},
		{"app mismatch", "PUT", "/v1/routes/app-a", `{"app":"app-b"}`, 400, `does not match`},
		{"bad app", "PUT", "/v1/routes/bad%20app", `{"app":"bad app"}`, 400, `app \"bad app\"`},
		{"upper-case host", "PUT", "/v1/routes/app-a", `{"app":"app-a","hosts":["A.example.com"]}`, 400, `lowercase`},
		{"single-label host", "PUT", "/v1/routes/app-a", `{"app":"app-a","hosts":["intranet"]}`, 400, `fully qualified`},
		{"target without port", "PUT", "/v1/routes/app-a", `{"app":"app-a","targets":["10.0.0.1"]}`, 400, `target`},
		{"port 0", "PUT", "/v1/routes/app-a", `{"app":"app-a","targets":["10.0.0.1:0"]}`, 400, `port 1-65535`},
		{"port too big", "PUT", "/v1/routes/app-a", `{"app":"app-a","targets":["10.0.0.1:70000"]}`, 400, `port 1-65535`},
		{"signed port", "PUT", "/v1/routes/app-a", `{"app":"app-a","targets":["10.0.0.1:+80"]}`, 400, `target`},
		{"no host", "PUT", "/v1/routes/app-a", `{"app":"app-a","targets":[":80"]}`, 400, `target`},
		{"bad target name", "PUT", "/v1/routes/app-a", `{"app":"app-a","targets":["-rm -rf:80"]}`, 400, `target`},
		{"too large", "PUT", "/v1/routes/app-a", big, 413, `too large`},
		{"delete", "DELETE", "/v1/routes/app-b", "", 204, ""},
		{"delete missing", "DELETE", "/v1/routes/app-b", "", 204, ""},
		{"check healthy", "POST", "/v1/check", `{"targets":["` + healthy.addr + `"],"health":{"path":"/","interval":"50ms","threshold":1,"deadline":"2s"}}`, 200, `{}`},
		{"check dead", "POST", "/v1/check", `{"targets":["` + dead + `"],"health":{"path":"/","interval":"50ms","deadline":"1s"}}`, 422, dead},
		{"check no targets", "POST", "/v1/check", `{"targets":[]}`, 400, `no targets`},
		{"check bad health", "POST", "/v1/check", `{"targets":["` + healthy.addr + `"],"health":{"interval":1000}}`, 400, `interval`},
		{"check bad path", "POST", "/v1/check", `{"targets":["` + healthy.addr + `"],"health":{"path":"up"}}`, 400, `path`},
		{"unknown endpoint", "GET", "/v1/nope", "", 404, ""},
		{"wrong method", "POST", "/v1/routes", "", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.code || !strings.Contains(string(body), tt.want) {
				t.Fatalf("%s %s: %d %s, want %d with %q", tt.method, tt.path, resp.StatusCode, body, tt.code, tt.want)
			}
			if resp.StatusCode >= 400 && resp.StatusCode != 404 && resp.StatusCode != 405 {
				var e struct{ Error string }
				if json.Unmarshal(body, &e) != nil || e.Error == "" {
					t.Fatalf("error answer is not {\"error\": msg}: %s", body)
				}
			}
		})
	}
}
