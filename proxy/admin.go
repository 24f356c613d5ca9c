package proxy

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/berthhq/berth"
)

// maxBody bounds an admin request body.
const maxBody = 1 << 20

// Admin returns the admin API handler, served on the unix socket:
//
//	GET    /v1/health         → 200 {"status":"ok","routes":N}
//	GET    /v1/routes         → 200 []berth.Route
//	PUT    /v1/routes/{app}   berth.Route → 200 berth.Route
//	DELETE /v1/routes/{app}   → 204
//	POST   /v1/check          berth.Probe → 200 {} | 422 {"error": why}
//	POST   /v1/drain          {"targets": [...], "timeout": "30s"} → 200 {"inflight": n, "routed": [...]}
//	GET    /v1/certificates   → 200 []berth.Certificate
//	PUT    /v1/certificates/{host}  {"cert_pem": "...", "key_pem": "..."} → 204
//	DELETE /v1/certificates/{host}  → 204
//
// A drain answers when nothing is in flight to the targets and no route
// names them, or when its timeout passed: inflight > 0 or a non-empty
// routed then says it gave up. Errors are {"error": message} with 400
// (invalid), 409 (conflict), 413 (body too large) or 500.
func (p *Proxy) Admin() http.Handler { return p.admin }

func (p *Proxy) newAdmin() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /v1/health", p.handle(p.health))
	mux.Handle("GET /v1/routes", p.handle(p.listRoutes))
	mux.Handle("PUT /v1/routes/{app}", p.handle(p.putRoute))
	mux.Handle("DELETE /v1/routes/{app}", p.handle(p.deleteRoute))
	mux.Handle("POST /v1/check", p.handle(p.check))
	mux.Handle("POST /v1/drain", p.handle(p.drainTargets))
	mux.Handle("GET /v1/certificates", p.handle(p.listCertificates))
	mux.Handle("PUT /v1/certificates/{host}", p.handle(p.putCertificate))
	mux.Handle("DELETE /v1/certificates/{host}", p.handle(p.deleteCertificate))
	return mux
}

// handle adapts a handler returning an error.
func (p *Proxy) handle(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		err := h(w, r)
		if err == nil {
			return
		}
		var tooLarge *http.MaxBytesError
		var unhealthy *unhealthyError
		switch {
		case errors.As(err, &tooLarge):
			writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{"request body too large"})
		case errors.As(err, &unhealthy):
			writeJSON(w, http.StatusUnprocessableEntity, errorBody{unhealthy.Error()})
		case berth.IsKind(err, berth.Invalid):
			writeJSON(w, http.StatusBadRequest, errorBody{berth.ErrorMessage(err)})
		case berth.IsKind(err, berth.Conflict):
			writeJSON(w, http.StatusConflict, errorBody{berth.ErrorMessage(err)})
		default:
			if r.Context().Err() == nil {
				p.log.Error("admin request", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			writeJSON(w, http.StatusInternalServerError, errorBody{"internal error"})
		}
	})
}

type errorBody struct {
	Error string `json:"error"`
}

func (p *Proxy) health(w http.ResponseWriter, r *http.Request) error {
	n := len(p.table.Load().apps)
	writeJSON(w, http.StatusOK, struct {
		Status string `json:"status"`
		Routes int    `json:"routes"`
	}{"ok", n})
	return nil
}

func (p *Proxy) listRoutes(w http.ResponseWriter, r *http.Request) error {
	routes, err := p.Routes(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, routes)
	return nil
}

func (p *Proxy) putRoute(w http.ResponseWriter, r *http.Request) error {
	var rt berth.Route
	if err := decode(r, &rt); err != nil {
		return err
	}
	if app := r.PathValue("app"); rt.App != app {
		return berth.E("set route", berth.Invalid, "route app %q does not match the path's %q", clip(rt.App), clip(app))
	}
	rt, err := p.setRoute(rt)
	if err != nil {
		return err
	}
	if rt.Hosts == nil {
		rt.Hosts = []string{}
	}
	if rt.Targets == nil {
		rt.Targets = []string{}
	}
	writeJSON(w, http.StatusOK, rt)
	return nil
}

func (p *Proxy) deleteRoute(w http.ResponseWriter, r *http.Request) error {
	app := r.PathValue("app")
	if err := p.RemoveRoute(r.Context(), app); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (p *Proxy) check(w http.ResponseWriter, r *http.Request) error {
	var pr berth.Probe
	if err := decode(r, &pr); err != nil {
		return err
	}
	if err := p.Check(r.Context(), pr); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// drainRequest is the body of POST /v1/drain.
type drainRequest struct {
	Targets []string `json:"targets"`
	Timeout string   `json:"timeout"` // a Go duration; 30s when empty
}

// drainAnswer is the answer of POST /v1/drain.
type drainAnswer struct {
	Inflight int      `json:"inflight"`
	Routed   []string `json:"routed,omitempty"`
}

func (p *Proxy) drainTargets(w http.ResponseWriter, r *http.Request) error {
	var req drainRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	var timeout time.Duration
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil || d <= 0 {
			return berth.E("drain", berth.Invalid, "timeout %q: use a positive duration such as 30s", clip(req.Timeout))
		}
		timeout = d
	}
	n, routed, err := p.drain(r.Context(), req.Targets, timeout)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, drainAnswer{Inflight: n, Routed: routed})
	return nil
}

func (p *Proxy) listCertificates(w http.ResponseWriter, r *http.Request) error {
	certs, err := p.Certificates(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, certs)
	return nil
}

// certificateUpload is the body of PUT /v1/certificates/{host}.
type certificateUpload struct {
	CertPEM string `json:"cert_pem"`
	KeyPEM  string `json:"key_pem"`
}

func (p *Proxy) putCertificate(w http.ResponseWriter, r *http.Request) error {
	var up certificateUpload
	// The decoder's message could quote the body, which holds a key.
	if err := json.NewDecoder(r.Body).Decode(&up); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return berth.E("set certificate", berth.Invalid, `body must be JSON {"cert_pem": "...", "key_pem": "..."}`)
	}
	if up.CertPEM == "" || up.KeyPEM == "" {
		return berth.E("set certificate", berth.Invalid, "cert_pem and key_pem are both required")
	}
	if err := p.SetCertificate(r.Context(), r.PathValue("host"), []byte(up.CertPEM), []byte(up.KeyPEM)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (p *Proxy) deleteCertificate(w http.ResponseWriter, r *http.Request) error {
	if err := p.SetCertificate(r.Context(), r.PathValue("host"), nil, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// decode reads a JSON body into v. Unknown fields are accepted, so that a
// proxy older than its control plane keeps working.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return berth.E("decode request", berth.Invalid, "body is not valid JSON for this request: %s", err.Error())
	}
	if dec.More() {
		return berth.E("decode request", berth.Invalid, "body holds more than one JSON value")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
