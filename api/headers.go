package api

import (
	"net/http"
	"time"
)

// Content security policies. The API never serves anything a browser
// should run or frame; the dashboard's pages load their own scripts,
// styles and images and nothing from elsewhere.
const (
	APIContentSecurityPolicy  = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	PageContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

// SecureHeaders sets the security headers of every API response: a strict
// Content-Security-Policy, no MIME sniffing, no referrer, no framing. A
// handler may still replace any of them.
func SecureHeaders(next http.Handler) http.Handler {
	return secureHeaders(next, APIContentSecurityPolicy)
}

// SecurePageHeaders is SecureHeaders for the dashboard's pages, whose
// policy lets them load their own scripts, styles and images.
func SecurePageHeaders(next http.Handler) http.Handler {
	return secureHeaders(next, PageContentSecurityPolicy)
}

func secureHeaders(next http.Handler, csp string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// Limits of the HTTP server of the API and dashboard. Streams (deployment
// and runtime logs) and uploads lift the read or write deadline for
// themselves with an http.ResponseController.
const (
	MaxHeaderBytes    = 64 << 10
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = time.Minute
	WriteTimeout      = 2 * time.Minute
	IdleTimeout       = 2 * time.Minute
)

// NewHTTPServer returns the HTTP server of the API and dashboard, with the
// limits above.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		MaxHeaderBytes:    MaxHeaderBytes,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
	}
}
