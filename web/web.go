// Package web is berth's dashboard. For now it serves one placeholder page
// that says the server runs and where the CLI and API are documented; it
// shows nothing secret and needs no login.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html/template"
	"log/slog"
	"net/http"
)

//go:embed templates/index.html templates/style.css
var files embed.FS

// Server serves the dashboard.
type Server struct {
	log  *slog.Logger
	page *template.Template
	css  template.CSS
	csp  string
}

// New returns a dashboard server.
func New(log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	css, err := files.ReadFile("templates/style.css")
	if err != nil {
		panic("web: embedded stylesheet missing: " + err.Error())
	}
	sum := sha256.Sum256(css)
	return &Server{
		log:  log,
		page: template.Must(template.ParseFS(files, "templates/index.html")),
		css:  template.CSS(css),
		// The page's only style is inline and allowed by its hash; it loads
		// nothing and may not be framed.
		csp: "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
			"img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	}
}

// indexView is what the placeholder page shows.
type indexView struct {
	CSS     template.CSS
	APIDocs string
}

// Handler returns the dashboard's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	return mux
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if err := s.page.Execute(&buf, indexView{CSS: s.css, APIDocs: "/api/v1/openapi.json"}); err != nil {
		s.log.Error("web: render index", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", s.csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(buf.Bytes())
}
